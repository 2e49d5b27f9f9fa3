#include "noise/static_key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/strutil.h"

dd_err_t dd_static_key_public(const uint8_t priv[DD_X25519_LEN],
			      uint8_t pub[DD_X25519_LEN])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv,
						   DD_X25519_LEN);
	size_t n = DD_X25519_LEN;
	dd_err_t rc = DD_ERR_CRYPTO;

	if (k != NULL && EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 &&
	    n == DD_X25519_LEN)
		rc = DD_OK;
	EVP_PKEY_free(k);
	return rc;
}

void dd_static_key_wipe(dd_static_key *k)
{
	OPENSSL_cleanse(k, sizeof *k);
}

static dd_err_t generate(dd_static_key *k)
{
	dd_err_t rc = dd_random_bytes(k->priv, sizeof k->priv);

	if (rc == DD_OK)
		rc = dd_static_key_public(k->priv, k->pub);
	return rc;
}

static dd_err_t read_key(int fd, dd_static_key *k, char *why, size_t why_len)
{
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 077) != 0 || st.st_uid != geteuid()) {
		snprintf(why, why_len, "the key file must be a regular file of "
			 "ours with mode 0600");
		return DD_ERR_INVALID;
	}
	if (st.st_size != DD_X25519_LEN) {
		snprintf(why, why_len, "the key file must hold exactly %d bytes",
			 DD_X25519_LEN);
		return DD_ERR_INVALID;
	}
	n = read(fd, k->priv, sizeof k->priv);
	if (n != DD_X25519_LEN) {
		snprintf(why, why_len, "reading the key file failed");
		return DD_ERR_IO;
	}
	return dd_static_key_public(k->priv, k->pub);
}

/* temp file, fsync, rename: a crash leaves the old state or the new key. */
static dd_err_t write_key(const char *path, const dd_static_key *k, char *why,
			  size_t why_len)
{
	char tmp[4096];
	int fd, n, ok;

	n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof tmp)
		return DD_ERR_TOO_LARGE;
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(why, why_len, "creating %s: %s", tmp, strerror(errno));
		return DD_ERR_IO;
	}
	ok = write(fd, k->priv, sizeof k->priv) == DD_X25519_LEN &&
	     fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		snprintf(why, why_len, "writing %s: %s", path, strerror(errno));
		unlink(tmp);
		return DD_ERR_IO;
	}
	return DD_OK;
}

dd_err_t dd_static_key_load(const char *path, dd_static_key *out, char *why,
			    size_t why_len)
{
	int fd;
	dd_err_t rc;

	why[0] = '\0';
	if (path == NULL)
		return generate(out);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno != ENOENT) {
		snprintf(why, why_len, "opening %s: %s", path, strerror(errno));
		return DD_ERR_IO;
	}
	if (fd >= 0) {
		rc = read_key(fd, out, why, why_len);
		close(fd);
		if (rc)
			dd_static_key_wipe(out);
		return rc;
	}
	rc = generate(out);
	if (rc == DD_OK)
		rc = write_key(path, out, why, why_len);
	if (rc)
		dd_static_key_wipe(out);
	return rc;
}
