/* A terminal's modes between CRIU's TermiosEntry and struct termios, for
 * the code that puts them back (the restore, the rollback in place). */
#ifndef FP_TTY_MODES_H
#define FP_TTY_MODES_H

#include <termios.h>

#include "images/criu_msgs.h"

/* Sets tio's flags, control characters and speeds to ct's; the rest of
 * tio (what the image does not hold) stays. */
void cr_termios_to_kernel(const cr_termios *ct, struct termios *tio);

#endif
