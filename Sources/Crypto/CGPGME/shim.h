#ifndef COFFER_CGPGME_SHIM_H
#define COFFER_CGPGME_SHIM_H
#include <gpgme.h>

/* gpgme_check_version is a macro passing an ABI check (offsetof a struct field); Swift cannot call it. */
static inline const char *coffer_gpgme_check_version(void) { return gpgme_check_version(NULL); }

/* gpg-error helpers are static inline functions/macros; keep them in one place. */
static inline unsigned int coffer_gpgme_err_code(gpgme_error_t e) { return (unsigned int)gpgme_err_code(e); }
static inline unsigned int coffer_gpgme_err_source(gpgme_error_t e) { return (unsigned int)gpgme_err_source(e); }
static inline gpgme_error_t coffer_gpgme_canceled(void) { return gpgme_error(GPG_ERR_CANCELED); }
static inline unsigned int coffer_gpgme_eof_code(void) { return (unsigned int)GPG_ERR_EOF; }

#endif
