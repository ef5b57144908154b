/* Files by handle (name_to_handle_at's form, as inotify's fdinfo shows a
 * watched file's): the file opened again, O_PATH, relative to a mount of
 * its filesystem. Needs CAP_DAC_READ_SEARCH. */
#ifndef FP_FHANDLE_H
#define FP_FHANDLE_H

#include <stdint.h>

/* s_dev in the kernel's encoding (major << 20 | minor); an fd, or -1 with
 * errno (ENODEV: no mount of that filesystem here). */
int fp_open_handle(uint32_t s_dev, uint32_t bytes, int type, const void *handle);

#endif
