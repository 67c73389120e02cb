// libfuse3's headers refuse to compile unless FUSE_USE_VERSION is set first.
#ifndef CFUSE3_H
#define CFUSE3_H
#define FUSE_USE_VERSION 312
#include <fuse3/fuse_lowlevel.h>
#endif
