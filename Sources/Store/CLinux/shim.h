// Linux system calls that glibc declares only under _GNU_SOURCE, which Swift's Glibc module
// is built without. The declarations match glibc's on every 64-bit Linux (off_t is 64-bit).
#include <sys/types.h>

// fallocate(2): reserve blocks for a file (mode 0 also extends its size).
extern int fallocate(int fd, int mode, off_t offset, off_t len);
