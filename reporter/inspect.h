/* reporter/inspect.h - `trialvm inspect FILE`: recognise a crash artifact by
 * its content, validate it and print a summary.
 *
 * Recognised: (a) guest-physical ELF dump (core.elf: ET_CORE whose notes
 * are CORE NT_PRSTATUS, QEMU and VMCOREINFO only), (b) application core
 * (app.core: ET_CORE with process-core notes, NT_PRPSINFO among them, and
 * no QEMU or VMCOREINFO note; any other note is refused), (c) Windows full
 * dump ("PAGEDU64"), (d) report.json (first non-blank byte '{'), (e) an
 * event log segment ("TVMEVLG1", vmm/evlog.h: every record checked). Every
 * structure is checked against the file's real size (fstat: sparse holes are
 * fine) and for consistency (no overlapping PT_LOADs or runs, report.json
 * cross-references); a malformed or truncated file gives -1 and one sentence
 * naming what is wrong and where. Strings from the file are escaped
 * (vmm/text.h) in the summary and in err.
 */
#ifndef TVM_INSPECT_H
#define TVM_INSPECT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../vmm/vm.h"

#define TVM_INSPECT_READ_MAX (1u << 20)

struct inspect_opts {
	/* Instead of the summary, write the raw bytes of guest-physical
	 * [read_phys_gpa, read_phys_gpa + read_phys_len) as the dump holds them
	 * to `out` (core.elf and memory.dmp only; len 1..TVM_INSPECT_READ_MAX;
	 * -1 when any byte is not covered by the dump; nothing is written then). */
	bool read_phys;
	uint64_t read_phys_gpa;
	uint64_t read_phys_len;
};

/* Inspect `path` (o may be NULL: summary). Output goes to `out`. 0 when the
 * file is valid (and for report.json, every listed file beside it matches
 * its size and sha256); -1 with err otherwise. */
int inspect_file(const char *path, const struct inspect_opts *o, FILE *out, struct tvm_err *err);

#endif
