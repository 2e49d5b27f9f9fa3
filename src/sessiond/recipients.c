#include "sessiond/recipients.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/strutil.h"

#define MAX_FILE 16384

dd_err_t dd_sd_rcpts_parse(const json_t *arr, dd_sd_rcpts *out, char *why,
			   size_t why_len)
{
	uint8_t k[DD_SEAL_KEY_LEN];
	const char *s;
	size_t i, j;

	memset(out, 0, sizeof *out);
	if (!json_is_array(arr)) {
		snprintf(why, why_len, "pubkeys must be an array");
		return DD_ERR_INVALID;
	}
	if (json_array_size(arr) > DD_SEAL_MAX_RECIPIENTS) {
		snprintf(why, why_len, "at most %d pubkeys",
			 DD_SEAL_MAX_RECIPIENTS);
		return DD_ERR_INVALID;
	}
	for (i = 0; i < json_array_size(arr); i++) {
		s = json_string_value(json_array_get(arr, i));
		if (s == NULL || strlen(s) != 2 * DD_SEAL_KEY_LEN ||
		    dd_hex_decode(s, strlen(s), k, sizeof k) != DD_OK) {
			snprintf(why, why_len, "pubkeys[%zu] is not 64 hex "
				 "digits", i);
			return DD_ERR_INVALID;
		}
		if (dd_seal_key_ok(k) != DD_OK) {
			snprintf(why, why_len, "pubkeys[%zu] is a low-order "
				 "point", i);
			return DD_ERR_INVALID;
		}
		for (j = 0; j < out->n; j++) {
			if (memcmp(out->keys[j], k, sizeof k) == 0)
				break;
		}
		if (j == out->n)
			memcpy(out->keys[out->n++], k, sizeof k);
	}
	return DD_OK;
}

json_t *dd_sd_rcpts_json(const dd_sd_rcpts *r)
{
	char hex[2 * DD_SEAL_KEY_LEN + 1];
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < r->n; i++) {
		dd_hex_encode(r->keys[i], DD_SEAL_KEY_LEN, hex);
		if (json_array_append_new(arr, json_string(hex)) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	return arr;
}

dd_err_t dd_sd_rcpts_load(const char *path, dd_sd_rcpts *out, char *why,
			  size_t why_len)
{
	char data[MAX_FILE];
	json_t *root = NULL;
	ssize_t n;
	dd_err_t rc;
	int fd;

	memset(out, 0, sizeof *out);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT)
		return DD_OK;
	if (fd < 0) {
		snprintf(why, why_len, "reading %s (%s)", path,
			 strerror(errno));
		return DD_ERR_IO;
	}
	do
		n = read(fd, data, sizeof data);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0 || (size_t)n == sizeof data) {
		snprintf(why, why_len, "reading %s: %s", path,
			 n < 0 ? strerror(errno) : "too large");
		return DD_ERR_IO;
	}
	rc = dd_json_parse(data, (size_t)n, sizeof data, &root, why, why_len);
	if (rc == DD_OK)
		rc = dd_sd_rcpts_parse(json_object_get(root, "pubkeys"), out,
				       why, why_len);
	json_decref(root);
	return rc;
}

dd_err_t dd_sd_rcpts_save(const char *path, const dd_sd_rcpts *r)
{
	char tmp[PATH_MAX];
	json_t *root;
	dd_buf b;
	dd_err_t rc = DD_ERR_IO;
	int fd = -1, n;

	n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof tmp)
		return DD_ERR_IO;
	dd_buf_init(&b, MAX_FILE);
	root = json_pack("{s:o}", "pubkeys", dd_sd_rcpts_json(r));
	if (root == NULL || dd_json_append(&b, root) != DD_OK ||
	    dd_buf_append_byte(&b, '\n') != DD_OK) {
		rc = DD_ERR_NOMEM;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0 || write(fd, b.data, b.len) != (ssize_t)b.len ||
	    fsync(fd) != 0)
		goto out;
	close(fd);
	fd = -1;
	if (rename(tmp, path) != 0)
		goto out;
	rc = DD_OK;
out:
	if (fd >= 0)
		close(fd);
	if (rc == DD_ERR_IO)
		(void)unlink(tmp);
	json_decref(root);
	dd_buf_free(&b);
	return rc;
}
