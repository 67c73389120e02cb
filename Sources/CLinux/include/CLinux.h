// Linux calls and constants that Swift's Glibc module hides (they need _GNU_SOURCE).
#ifndef CLINUX_H
#define CLINUX_H
#include <sys/types.h>
#include <stdint.h>
#include <sys/xattr.h>
#include <spawn.h>

extern const int clinux_O_PATH;
extern const int clinux_O_DIRECT;
extern const int clinux_O_NOATIME;
extern const int clinux_AT_EMPTY_PATH;
extern const int clinux_SEEK_DATA;
extern const int clinux_SEEK_HOLE;
extern const long clinux_UTIME_NOW;
extern const long clinux_UTIME_OMIT;
extern const unsigned int clinux_RENAME_NOREPLACE;
extern const unsigned int clinux_RENAME_EXCHANGE;
extern const int clinux_FALLOC_FL_KEEP_SIZE;
extern const int clinux_FALLOC_FL_PUNCH_HOLE;

int clinux_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags);
/// syncfs(2): commits the filesystem holding `fd` to disk.
int clinux_syncfs(int fd);
/// sync_file_range(2) with SYNC_FILE_RANGE_WRITE: starts writeback of a range, does not wait.
int clinux_sync_file_range_write(int fd, int64_t offset, int64_t length);
ssize_t clinux_copy_file_range(int fd_in, int64_t *off_in, int fd_out, int64_t *off_out, size_t len, unsigned int flags);
int clinux_fallocate(int fd, int mode, int64_t offset, int64_t len);
/// Makes a spawned child start with every descriptor from `lowest` up closed.
int clinux_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest);

#endif
