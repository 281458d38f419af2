/* reporter/windump.h - Windows full memory dump (memory.dmp), read by WinDbg,
 * kdmp-parser and Volatility (DESIGN.md "Formats", the DUMP_HEADER64 table).
 *
 * Layout: a 0x2000-byte DUMP_HEADER64, then the pages of every RAM region
 * (one PhysicalMemoryBlock run per region, in guest-physical order), 4096
 * bytes each; all-zero pages are holes.
 *
 * Header contents:
 *   "PAGE" "DU64", MajorVersion 0xf, MinorVersion 0x4563 (build 17763, as a
 *   Windows Server 2019 full dump carries; kdmp-parser checks neither),
 *   DirectoryTableBase = CR3 of the crashing vCPU, PfnDatabase,
 *   PsLoadedModuleList, PsActiveProcessHead, KdDebuggerDataBlock = 0 (there is
 *   no Windows kernel to point at), MachineImageType 0x8664,
 *   NumberProcessors = vCPUs, BugCheckCode = crash_bugcheck_code(kind),
 *   BugCheckParameter1..4:
 *     app fault: (signo << 32) | vector, fault address, application RIP, vCPU
 *     otherwise: 0, CR2, RIP, vCPU
 *   ContextRecord (x64 CONTEXT, flags 0x10001f) of the crashing vCPU,
 *   ExceptionRecord: code by kind (windump.c: exception_code), flags 1
 *   (non-continuable), address = RIP (the application's RIP for an app
 *   fault), for an access violation the two standard parameters,
 *   DumpType 1, RequiredDumpSpace = 0x2000 + pages * 4096, SystemTime
 *   (FILETIME), Comment "trialvm crash dump", SystemUpTime (100 ns units).
 * Every other byte of the header is the 'PAGE' fill Windows leaves in unused
 * fields (parsers such as kdmp-parser take a 'PAGE' NumberOfRuns to mean "no
 * run list", so the fill is what they expect), except fields trialvm owns,
 * which are written in full (zero where unknown).
 */
#ifndef TVM_WINDUMP_H
#define TVM_WINDUMP_H

#include "crash_state.h"

#define TVM_WINDUMP_HEADER_SIZE 0x2000u
#define TVM_WINDUMP_MAX_RUNS 43

/* Write memory.dmp for `cs` to fd (regular file; pwrite from offset 0,
 * truncated to size, fsync'ed). RAM regions must be page aligned and at most
 * TVM_WINDUMP_MAX_RUNS. 0 on success; -1 with err. */
int write_memory_dmp(const struct crash_state *cs, int fd, struct tvm_err *err);

#endif
