/* Prints each argument (argv[1..]) on its own line, then the contents of
 * every argument that names an existing regular file. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		printf("%s\n", argv[i]);
	fflush(stdout);
	int status = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		int fd = open(argv[i], O_RDONLY);
		if (fd < 0) {
			status = 1;
			continue;
		}
		char buf[4096];
		ssize_t n;
		while ((n = read(fd, buf, sizeof buf)) > 0)
			if (write(1, buf, n) != n)
				status = 1;
		if (n < 0)
			status = 1;
		close(fd);
	}
	return status;
}
