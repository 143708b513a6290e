// OpenSSL 3 libcrypto: only the EVP, KDF, MAC and RAND surfaces Coffer uses.
// Imported (as `internal import COpenSSL`) only by the thin wrappers Sources/Crypto/Internal/OpenSSL*.swift.
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/err.h>
#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
