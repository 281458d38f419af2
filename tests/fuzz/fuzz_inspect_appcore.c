/* tests/fuzz/fuzz_inspect_appcore.c - libFuzzer harness for `trialvm inspect`
 * on an application core (reporter/inspect_appcore.c): the input is parsed
 * as an ELF core (insp_elf_load) and handed to the app.core checks and
 * summary directly, whatever its notes say, so that every mutation reaches
 * them. Seeds: tests/fuzz/corpus/fuzz_inspect_appcore/. */
#include "fuzz_inspect_common.h"

static int app_core(const struct insp_src *s, const struct inspect_opts *o, FILE *out, struct tvm_err *err)
{
	struct insp_elf e = { 0 };
	int rc = insp_elf_load(s, &e, err);
	if (rc == 0)
		rc = insp_app_core(s, &e, o, out, err);
	insp_elf_free(&e);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct insp_src s;
	fz_load(&s, "app.core", data, len);
	fz_inspect(app_core, &s, 0);
	/* And the whole ELF path, which must refuse or take it the same way. */
	fz_inspect(insp_elf, &s, 0);
	return 0;
}
