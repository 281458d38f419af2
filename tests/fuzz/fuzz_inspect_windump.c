/* tests/fuzz/fuzz_inspect_windump.c - libFuzzer harness for `trialvm inspect`
 * on a Windows full memory dump (reporter/inspect_windump.c): header, run
 * list, CONTEXT checks, summary and --read-phys. The input is the file.
 * Seeds: tests/fuzz/corpus/fuzz_inspect_windump/. */
#include "fuzz_inspect_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct insp_src s;
	fz_load(&s, "memory.dmp", data, len);
	fz_inspect(insp_windump, &s, 1);
	return 0;
}
