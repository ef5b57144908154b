#include "images/tty_modes.h"

void cr_termios_to_kernel(const cr_termios *ct, struct termios *tio)
{
	tio->c_iflag = ct->c_iflag;
	tio->c_oflag = ct->c_oflag;
	tio->c_cflag = ct->c_cflag;
	tio->c_lflag = ct->c_lflag;
	tio->c_line = (cc_t)ct->c_line;
	for (size_t i = 0; i < ct->n_c_cc && i < NCCS; i++)
		tio->c_cc[i] = (cc_t)ct->c_cc[i];
	cfsetispeed(tio, ct->c_ispeed);
	cfsetospeed(tio, ct->c_ospeed);
}
