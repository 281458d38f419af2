/* reporter/appcore.h - the application's process core (app.core), as Linux
 * writes one for a crashed process, from a trialos application fault, so that
 * `gdb APP app.core` shows the backtrace. (For a Linux guest's process the
 * core its kernel wrote, cs->guest_core, is written out as it is.)
 *
 * Layout: ET_CORE EM_X86_64; PT_NOTE first, then one PT_LOAD per user mapping
 * of the fault record (cs->app->maps, in that order): p_vaddr = start,
 * p_memsz = end - start, p_flags from prot, p_align 4096, p_offset page
 * aligned; the contents are read through the application's page tables
 * (CR3 = f.page_table_root); pages not mapped there, and all-zero pages, are
 * holes (read as zero).
 * p_filesz = p_memsz, except: trailing pages not present in the page tables
 * are left out of the file (p_filesz ends after the last present page),
 * and mappings without PROT_READ or past the size budget (2 x guest RAM +
 * 64 MiB of file extent; ELF segments and the stack get budget first) get a
 * smaller p_filesz (possibly 0), as Linux does for memory it leaves out. Invalid mappings (unaligned, empty,
 * outside user space) are left out.
 * Notes (owner "CORE"): NT_PRSTATUS (pr_info.si_signo = pr_cursig = signal,
 * pr_pid 1, pr_reg = the fault record's registers, pr_fpvalid 1),
 * NT_PRPSINFO (pr_state 0, pr_sname 'R' as Linux writes a running task,
 * pr_fname = basename of the app name, pr_psargs = argv joined by spaces when
 * argv is readable, else the app name), NT_SIGINFO (si_signo, si_code,
 * si_addr for fault signals, si_pid 1 for self-sent ones), NT_AUXV (the
 * auxv, at most 4 KiB; left out when not readable), NT_FPREGSET (the
 * crashing vCPU's FXSAVE image: trialos never touches FPU/SSE state, so it is
 * the application's).
 */
#ifndef TVM_APPCORE_H
#define TVM_APPCORE_H

#include "crash_state.h"

#define TVM_APPCORE_AUXV_MAX 4096u

/* Write app.core for a CRASH_APP_FAULT (cs->app or cs->guest_core set) to fd (regular file:
 * pwrite from 0, truncated to size, fsync'ed). 0 on success; -1 with err. */
int write_app_core(const struct crash_state *cs, int fd, struct tvm_err *err);

#endif
