/* reporter/inspect.c - validate and summarise crash artifacts: recognise the
 * format by content and hand the file to its part (inspect_int.h).
 * Every read goes through insp_read(), which checks the range against the
 * file size first; nothing here trusts a length or offset from the file. */
#include "inspect_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../vmm/evlog.h"
#include "../vmm/text.h"
#include "../vmm/fileio.h"
#include "../vmm/util.h"

int insp_read(const struct insp_src *s, uint64_t off, void *buf, uint64_t len, const char *what,
		    struct tvm_err *err)
{
	uint64_t end;
	if (add_overflows(off, len, &end) || end > s->size)
		return tvm_seterr(err, "%s: %s at offset 0x%" PRIx64 " (%" PRIu64 " bytes) extends past the end of the file (%" PRIu64 " bytes)",
				  s->path, what, off, len, s->size);
	int rc = len > SIZE_MAX ? -EFBIG : pread_all(s->fd, buf, (size_t)len, off);
	if (rc < 0)
		return tvm_seterr(err, "%s: cannot read %s at offset 0x%" PRIx64 ": %s", s->path, what, off,
				  rc == -ENODATA ? "unexpected end of file" : strerror(-rc));
	return 0;
}


/* Printable copy of at most n bytes of s (stops at NUL or newline). */
const char *insp_esc(char *buf, size_t cap, const void *s, size_t len)
{
	const char *nul = memchr(s, 0, len);
	tvm_escape(s, nul ? (size_t)(nul - (const char *)s) : len, TVM_ESC_TERMINAL, buf, cap);
	return buf;
}

void insp_mib(char *buf, size_t cap, uint64_t v)
{
	if (v >= (1ull << 30) && !(v & ((1ull << 30) - 1)))
		snprintf(buf, cap, "%" PRIu64 " GiB", v >> 30);
	else if (v >= (1ull << 20) && !(v & ((1ull << 20) - 1)))
		snprintf(buf, cap, "%" PRIu64 " MiB", v >> 20);
	else if (v >= 1024 && !(v & 1023))
		snprintf(buf, cap, "%" PRIu64 " KiB", v >> 10);
	else
		snprintf(buf, cap, "%" PRIu64 " bytes", v);
}

int insp_emit(FILE *out, const void *buf, size_t len, struct tvm_err *err)
{
	if (len && fwrite(buf, 1, len, out) != len)
		return tvm_seterr(err, "cannot write the requested bytes: %s", strerror(errno));
	if (fflush(out) != 0)
		return tvm_seterr(err, "cannot write the requested bytes: %s", strerror(errno));
	return 0;
}

int insp_check_read_opts(const struct inspect_opts *o, const char *path, struct tvm_err *err)
{
	if (o->read_phys_len == 0 || o->read_phys_len > TVM_INSPECT_READ_MAX)
		return tvm_seterr(err, "%s: read length %" PRIu64 " must be between 1 and %u bytes", path,
				  o->read_phys_len, TVM_INSPECT_READ_MAX);
	uint64_t end;
	if (add_overflows(o->read_phys_gpa, o->read_phys_len, &end))
		return tvm_seterr(err, "%s: guest-physical range 0x%" PRIx64 " + %" PRIu64 " wraps around", path,
				  o->read_phys_gpa, o->read_phys_len);
	return 0;
}

/* ====================================================================== */

int inspect_file(const char *path, const struct inspect_opts *o, FILE *out, struct tvm_err *err)
{
	struct insp_src s = { .path = path };
	struct stat st;
	s.fd = open_regular(path, &st, err);
	if (s.fd < 0)
		return -1;
	int rc = -1;
	s.size = (uint64_t)st.st_size;
	s.blocks = (uint64_t)st.st_blocks * 512;
	uint8_t magic[64] = { 0 };
	uint64_t n = s.size < sizeof magic ? s.size : sizeof magic;
	if (n == 0) {
		tvm_seterr(err, "%s is empty", path);
		goto out;
	}
	if (insp_read(&s, 0, magic, n, "the file's first bytes", err) < 0)
		goto out;
	size_t ws = 0;
	while (ws < n && (magic[ws] == ' ' || magic[ws] == '\t' || magic[ws] == '\n' || magic[ws] == '\r'))
		ws++;
	if (n >= 4 && !memcmp(magic, ELFMAG, SELFMAG))
		rc = insp_elf(&s, o, out, err);
	else if (n >= 8 && !memcmp(magic, "PAGEDU64", 8))
		rc = insp_windump(&s, o, out, err);
	else if (n >= 8 && !memcmp(magic, "PAGEDUMP", 8))
		tvm_seterr(err, "%s: a 32-bit Windows dump (\"PAGEDUMP\"); only 64-bit dumps are supported", path);
	else if (ws < n && magic[ws] == '{')
		rc = insp_json(&s, o, out, err);
	else if (n >= 8 && !memcmp(magic, EVLOG_MAGIC, 8))
		rc = insp_evlog(&s, o, out, err);
	else
		tvm_seterr(err, "%s: unrecognised content at offset 0 (not an ELF core, a Windows dump, a report.json or an event log)", path);
out:
	close(s.fd);
	return rc;
}
