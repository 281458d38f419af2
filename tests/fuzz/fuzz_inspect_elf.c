/* tests/fuzz/fuzz_inspect_elf.c - libFuzzer harness for `trialvm inspect` on
 * an ELF core (reporter/inspect_elf.c): the ELF/program header/note parser,
 * the choice between a guest dump and an application core, and the guest
 * dump's checks, summary and --read-phys. The input is the file.
 * Seeds: tests/fuzz/corpus/fuzz_inspect_elf/ (fuzz_inspect_seeds.py). */
#include "fuzz_inspect_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct insp_src s;
	fz_load(&s, "core.elf", data, len);
	fz_inspect(insp_elf, &s, 1);
	return 0;
}
