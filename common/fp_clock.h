/* The monotonic clock in milliseconds: deadlines (whole ms) and the
 * timings that --json reports (fractions). */
#ifndef FP_CLOCK_H
#define FP_CLOCK_H

long long fp_mono_ms(void);
double fp_mono_ms_f(void);

#endif
