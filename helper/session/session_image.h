/* The buildah container a `forkpoint build` session runs in: its name and
 * image are recorded in the session directory (buildah-container) and
 * released when the session is cleaned up. */
#ifndef FP_SESSION_IMAGE_H
#define FP_SESSION_IMAGE_H

#include "fp_error.h"

#define FP_SESSION_IMAGE_RECORD "buildah-container"

/* Writes the record into session directory dir. */
int fp_session_image_record(const char *dir, const char *container, const char *image, fp_error *err);

/* Removes the recorded container and its image, if dir has a record. */
int fp_session_image_release(const char *dir, fp_error *err);

#endif
