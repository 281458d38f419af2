/* tests/fuzz/fuzz_inspect_report.c - libFuzzer harness for `trialvm inspect`
 * on a report.json (reporter/inspect_report.c): JSON schema, cross-field
 * checks, escaping of its strings, and the listed files. The input is the
 * JSON text, inspected as DIR/report.json where DIR (made once per process,
 * removed at exit) holds what a listed name may meet: console.log (6
 * bytes, "hello\n"), core.elf (3 bytes), a FIFO, a symbolic link and a
 * directory. Seeds: tests/fuzz/corpus/fuzz_inspect_report/. */
#include <fcntl.h>
#include <sys/stat.h>

#include "fuzz_inspect_common.h"

static char dir[64], path[96];

static void cleanup(void)
{
	static const char *const names[] = { "console.log", "core.elf", "fifo", "link" };
	char p[128];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, names[i]);
		unlink(p);
	}
	snprintf(p, sizeof p, "%s/subdir", dir);
	rmdir(p);
	rmdir(dir);
}

static void put(const char *name, const char *text)
{
	char p[128];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/fuzz_inspect_report.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	atexit(cleanup);
	put("console.log", "hello\n");
	put("core.elf", "ELF");
	char p[128];
	snprintf(p, sizeof p, "%s/fifo", dir);
	if (mkfifo(p, 0644) < 0)
		abort();
	snprintf(p, sizeof p, "%s/link", dir);
	if (symlink("console.log", p) < 0)
		abort();
	snprintf(p, sizeof p, "%s/subdir", dir);
	if (mkdir(p, 0755) < 0)
		abort();
	snprintf(path, sizeof path, "%s/report.json", dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (!dir[0])
		setup();
	struct insp_src s;
	fz_load(&s, path, data, len);
	fz_inspect(insp_json, &s, 0);
	return 0;
}
