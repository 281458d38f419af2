/* vmm/fileio.h - the file helpers every layer shares: whole writes, a
 * directory's fsync, the sha256 of a file. Errors are negative errno
 * values (a write that makes no progress is -EIO); EINTR is retried. */
#ifndef TVM_FILEIO_H
#define TVM_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Read exactly len bytes at offset off (pieces of at most 1 GiB). 0, -errno,
 * or -ENODATA when the file ends first. */
int pread_all(int fd, void *buf, size_t len, uint64_t off);
/* Write all of buf to fd (at its offset). 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);
/* Write all of buf at offset off (pieces of at most 1 GiB). 0 or -errno. */
int pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
/* fsync a directory (after a rename or create in it); a file system that
 * cannot (EINVAL) counts as done. 0 or -errno. */
int fsync_dir(const char *dir);
/* mkdir -p: PATH and each missing parent, new ones with `mode`. 0, or
 * -errno (ENAMETOOLONG past 4095 bytes) for the first that failed. */
int mkdir_p(const char *path, unsigned mode);
/* fsync the directory that holds `path` ("." for a bare name). */
int fsync_parent(const char *path);
/* PATH's content written durably: a temporary name beside it (mode),
 * fsync, rename, the directory's fsync. 0, or -1 with err. */
struct tvm_err;
int write_file_durably(const char *path, const void *buf, size_t len, unsigned mode, struct tvm_err *err);
/* rm -rf PATH (symbolic links are removed, never followed). 0 (also
 * when PATH does not exist) or -errno. */
int remove_tree(const char *path);
/* sha256 of what fd holds from its current offset to the end. 0 or -errno. */
int sha256_fd(int fd, uint8_t md[32]);
/* sha256 of the regular file PATH (opened without blocking: a FIFO is
 * refused, never waited on). 0, or -1 with err naming PATH. */
int sha256_path(const char *path, uint8_t md[32], struct tvm_err *err);
/* The same as 64 lowercase hex digits and a NUL. */
void sha256_hex(const uint8_t md[32], char hex[65]);

#endif
