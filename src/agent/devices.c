#include "agent/devices.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/strutil.h"
#include "noise/noise.h"

/* 9999-12-31T23:59:59.999Z: no clock we will meet goes past it. */
#define TIME_MAX_MS UINT64_C(253402300799999)

struct sub {
	dd_devices_hooks h;
	unsigned id;       /* 0: free slot */
};

struct dd_devices {
	char *path;        /* NULL: memory only */
	size_t max;
	dd_device *v;      /* sorted by key */
	size_t n;
	struct sub subs[DD_DEVICES_MAX_SUBS];
	unsigned next_id;
};

__attribute__((format(printf, 3, 4)))
static void whyf(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || why_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
}

/* --- validation of outside values ------------------------------------ */

/*
 * Little-endian u >= 2^255 - 19, or the top bit set: another spelling of
 * some canonical key. One device, one hex identity.
 */
static int non_canonical(const uint8_t u[DD_DEVICE_KEY_LEN])
{
	if (u[31] & 0x80)
		return 1;
	if (u[31] != 0x7f || u[0] < 0xed)
		return 0;
	for (int i = 1; i < 31; i++)
		if (u[i] != 0xff)
			return 0;
	return 1;
}

/* Canonical and not of small order (spec 7.12, DESIGN.md 5 item 7). */
static int key_ok(const uint8_t key[DD_DEVICE_KEY_LEN])
{
	return !non_canonical(key) && dd_noise_pubkey_ok(key);
}

dd_err_t dd_device_key_parse(const char *hex, uint8_t key[DD_DEVICE_KEY_LEN],
			     char *why, size_t why_len)
{
	if (hex == NULL || strlen(hex) != 2 * DD_DEVICE_KEY_LEN ||
	    dd_hex_decode(hex, 2 * DD_DEVICE_KEY_LEN, key,
			  DD_DEVICE_KEY_LEN) != DD_OK) {
		whyf(why, why_len, "%s", "pubkey must be 64 hex characters");
		return DD_ERR_INVALID;
	}
	if (!key_ok(key)) {
		whyf(why, why_len, "%s", "pubkey is not an acceptable X25519 "
		     "public key (small order or non-canonical)");
		return DD_ERR_INVALID;
	}
	return DD_OK;
}

/* Length of the UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const uint8_t *s, size_t n)
{
	uint32_t c;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, c = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and past U+10FFFF. */
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	/* C1 controls are as invisible on a confirmation page as C0. */
	if (c >= 0x80 && c <= 0x9f)
		return 0;
	return len;
}

static int text_ok(const char *s, size_t n)
{
	const uint8_t *u = (const uint8_t *)s;
	size_t i = 0, k;

	while (i < n) {
		if (u[i] < 0x20 || u[i] == 0x7f)
			return 0;
		k = utf8_len(u + i, n - i);
		if (k == 0)
			return 0;
		i += k;
	}
	return 1;
}

dd_err_t dd_device_label_parse(const char *s, char *out, char *why,
			       size_t why_len)
{
	size_t n;

	if (s == NULL) {
		whyf(why, why_len, "%s", "label must be 1..=128 bytes");
		return DD_ERR_INVALID;
	}
	n = strlen(s);
	dd_str_trim(&s, &n);
	if (n == 0 || n > DD_DEVICE_LABEL_MAX) {
		whyf(why, why_len, "%s", "label must be 1..=128 bytes");
		return DD_ERR_INVALID;
	}
	if (!text_ok(s, n)) {
		whyf(why, why_len, "%s", "label must be UTF-8 text without "
		     "control characters");
		return DD_ERR_INVALID;
	}
	memcpy(out, s, n);
	out[n] = '\0';
	return DD_OK;
}

static int login_ok(const char *s)
{
	size_t n = strlen(s);

	if (n > DD_DEVICE_LOGIN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

/* --- lookup ---------------------------------------------------------- */

static int cmp_dev(const void *a, const void *b)
{
	return memcmp(((const dd_device *)a)->key, ((const dd_device *)b)->key,
		      DD_DEVICE_KEY_LEN);
}

static dd_device *find(const dd_devices *d, const uint8_t key[DD_DEVICE_KEY_LEN])
{
	dd_device probe;

	if (d->n == 0)
		return NULL;
	memcpy(probe.key, key, DD_DEVICE_KEY_LEN);
	return bsearch(&probe, d->v, d->n, sizeof *d->v, cmp_dev);
}

int dd_devices_is_trusted(const dd_devices *d,
			  const uint8_t key[DD_DEVICE_KEY_LEN])
{
	const dd_device *dev = d ? find(d, key) : NULL;

	return dev != NULL && dev->revoked_at_ms == 0;
}

size_t dd_devices_count(const dd_devices *d)
{
	return d->n;
}

const dd_device *dd_devices_at(const dd_devices *d, size_t i)
{
	return i < d->n ? &d->v[i] : NULL;
}

dd_err_t dd_devices_recipients(const dd_devices *d,
			       uint8_t (*out)[DD_DEVICE_KEY_LEN], size_t cap,
			       size_t *n)
{
	size_t k = 0;

	for (size_t i = 0; i < d->n; i++) {
		if (d->v[i].revoked_at_ms != 0)
			continue;
		if (k < cap)
			memcpy(out[k], d->v[i].key, DD_DEVICE_KEY_LEN);
		k++;
	}
	*n = k;
	return k > cap ? DD_ERR_TOO_LARGE : DD_OK;
}

/* --- the file format ------------------------------------------------- */

json_t *dd_device_json(const dd_device *dev)
{
	json_t *o = json_pack("{s:s, s:s, s:I}", "pubkey", dev->pubkey, "label",
			      dev->label, "created_at_ms",
			      (json_int_t)dev->created_at_ms);

	if (o != NULL && dev->paired_by[0] != '\0' &&
	    json_object_set_new(o, "paired_by", json_string(dev->paired_by)))
		goto fail;
	if (o != NULL && dev->paired_by_id != 0 &&
	    json_object_set_new(o, "paired_by_id",
				json_integer((json_int_t)dev->paired_by_id)))
		goto fail;
	if (o != NULL && dev->revoked_at_ms != 0 &&
	    json_object_set_new(o, "revoked_at_ms",
				json_integer((json_int_t)dev->revoked_at_ms)))
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

static int known_member(const char *k)
{
	static const char *const names[] = {"pubkey", "label", "created_at_ms",
		"revoked_at_ms", "paired_by", "paired_by_id", NULL};

	for (size_t i = 0; names[i] != NULL; i++)
		if (strcmp(k, names[i]) == 0)
			return 1;
	return 0;
}

/* An optional positive integer member: absent reads as 0. */
static dd_err_t opt_u64(const json_t *o, const char *k, uint64_t max,
			uint64_t *out)
{
	dd_err_t rc = dd_json_get_u64(o, k, 1, max, out);

	if (rc == DD_ERR_NOT_FOUND) {
		*out = 0;
		rc = DD_OK;
	}
	return rc;
}

/* One record as we write it: anything else is a damaged file. */
static dd_err_t parse_record(json_t *o, dd_device *dev, char *why,
			     size_t why_len)
{
	const char *pub = NULL, *label = NULL, *by = NULL, *k;
	uint64_t created = 0, revoked = 0, by_id = 0;
	json_t *v;
	dd_err_t rc;

	if (!json_is_object(o)) {
		whyf(why, why_len, "%s", "a device record is not an object");
		return DD_ERR_INVALID;
	}
	json_object_foreach(o, k, v) {
		if (!known_member(k)) {
			whyf(why, why_len, "unknown member %.40s", k);
			return DD_ERR_INVALID;
		}
	}
	memset(dev, 0, sizeof *dev);
	rc = dd_json_get_str(o, "pubkey", &pub);
	if (rc == DD_OK)
		rc = dd_device_key_parse(pub, dev->key, why, why_len);
	if (rc == DD_OK) {
		dd_hex_encode(dev->key, DD_DEVICE_KEY_LEN, dev->pubkey);
		/* We write lower case; anything else did not come from us. */
		if (strcmp(dev->pubkey, pub) != 0)
			rc = DD_ERR_INVALID;
	}
	if (rc == DD_OK)
		rc = dd_json_get_str(o, "label", &label);
	if (rc == DD_OK)
		rc = dd_device_label_parse(label, dev->label, why, why_len);
	if (rc == DD_OK && strcmp(dev->label, label) != 0)
		rc = DD_ERR_INVALID;
	if (rc == DD_OK)
		rc = dd_json_get_u64(o, "created_at_ms", 0, TIME_MAX_MS, &created);
	if (rc) {
		whyf(why, why_len, "%s", "a device record needs pubkey (lower-case "
		     "hex), label (trimmed) and created_at_ms");
		return DD_ERR_INVALID;
	}
	rc = opt_u64(o, "revoked_at_ms", TIME_MAX_MS, &revoked);
	if (rc == DD_OK)
		rc = opt_u64(o, "paired_by_id", INT64_MAX, &by_id);
	if (rc == DD_OK)
		rc = dd_json_get_str(o, "paired_by", &by);
	if (rc == DD_OK && !login_ok(by))
		rc = DD_ERR_INVALID;
	if (rc == DD_OK)
		snprintf(dev->paired_by, sizeof dev->paired_by, "%s", by);
	if (rc == DD_ERR_NOT_FOUND)
		rc = DD_OK;
	if (rc) {
		whyf(why, why_len, "%s", "a device record has a bad revoked_at_ms, "
		     "paired_by or paired_by_id");
		return DD_ERR_INVALID;
	}
	dev->created_at_ms = (int64_t)created;
	dev->revoked_at_ms = (int64_t)revoked;
	dev->paired_by_id = by_id;
	return DD_OK;
}

static dd_err_t parse_into(size_t max, const char *text, size_t len,
			   dd_device **out, size_t *out_n, char *why,
			   size_t why_len)
{
	json_t *root = NULL, *arr;
	dd_device *v = NULL;
	size_t n = 0, i;
	dd_err_t rc;

	rc = dd_json_parse(text, len, DD_DEVICES_FILE_MAX, &root, why, why_len);
	if (rc)
		goto out;
	arr = json_object_get(root, "devices");
	rc = DD_ERR_INVALID;
	if (!json_is_object(root) || json_object_size(root) != 1 ||
	    !json_is_array(arr)) {
		whyf(why, why_len, "%s", "the file must be {\"devices\": [...]}");
		goto out;
	}
	n = json_array_size(arr);
	if (n > max) {
		whyf(why, why_len, "%s", "more devices than DD_AGENT_MAX_DEVICES");
		rc = DD_ERR_TOO_LARGE;
		goto out;
	}
	rc = DD_OK;
	if (n > 0)
		v = dd_calloc(n, sizeof *v);
	if (n > 0 && v == NULL)
		rc = DD_ERR_NOMEM;
	for (i = 0; rc == DD_OK && i < n; i++)
		rc = parse_record(json_array_get(arr, i), &v[i], why, why_len);
	if (rc)
		goto out;
	qsort(v, n, sizeof *v, cmp_dev);
	for (i = 1; i < n; i++) {
		if (cmp_dev(&v[i - 1], &v[i]) == 0) {
			whyf(why, why_len, "device %s is listed twice", v[i].pubkey);
			rc = DD_ERR_INVALID;
			goto out;
		}
	}
	*out = v;
	*out_n = n;
	v = NULL;
out:
	dd_free(v);
	json_decref(root);
	return rc;
}

dd_err_t dd_devices_parse(dd_devices *d, const char *text, size_t len,
			  char *why, size_t why_len)
{
	dd_device *v = NULL;
	size_t n = 0;
	dd_err_t rc = parse_into(d->max, text, len, &v, &n, why, why_len);

	if (rc)
		return rc;
	dd_free(d->v);
	d->v = v;
	d->n = n;
	return DD_OK;
}

/* The whole registry, pretty-printed as spec 3.4 shows it. */
static dd_err_t render(const dd_device *v, size_t n, char **out)
{
	json_t *root = json_object(), *arr = json_array();
	dd_err_t rc = DD_ERR_NOMEM;

	*out = NULL;
	if (root == NULL || arr == NULL ||
	    json_object_set(root, "devices", arr) != 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(arr, dd_device_json(&v[i])) != 0)
			goto out;
	*out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (*out != NULL)
		rc = DD_OK;
out:
	json_decref(arr);
	json_decref(root);
	return rc;
}

dd_err_t dd_devices_dump(const dd_devices *d, char **out)
{
	return render(d->v, d->n, out);
}

static dd_err_t sync_dir(const char *path)
{
	char *copy = dd_strdup(path);
	int fd = -1;
	dd_err_t rc = DD_ERR_NOMEM;

	if (copy == NULL)
		return rc;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = fd >= 0 && fsync(fd) == 0 ? DD_OK : DD_ERR_IO;
	if (fd >= 0)
		close(fd);
	dd_free(copy);
	return rc;
}

/* temp file, fsync, rename, directory fsync: old state or new, never half. */
static dd_err_t write_file(const char *path, const char *text)
{
	dd_buf tmp;
	size_t len = strlen(text), done = 0;
	ssize_t w;
	int fd = -1, ok;
	dd_err_t rc;

	dd_buf_init(&tmp, 4096);
	rc = dd_buf_appendf(&tmp, "%s.tmp", path);
	if (rc)
		goto out;
	unlink(dd_buf_str(&tmp));
	fd = open(dd_buf_str(&tmp), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
		  O_NOFOLLOW, 0600);
	rc = DD_ERR_IO;
	if (fd < 0)
		goto out;
	while (done < len) {
		w = write(fd, text + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	ok = done == len && fchmod(fd, 0600) == 0 && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	fd = -1;
	if (!ok || rename(dd_buf_str(&tmp), path) != 0) {
		unlink(dd_buf_str(&tmp));
		goto out;
	}
	rc = sync_dir(path);
out:
	if (fd >= 0)
		close(fd);
	dd_buf_free(&tmp);
	return rc;
}

static dd_err_t persist(const dd_devices *d, const dd_device *v, size_t n)
{
	char *text = NULL;
	dd_err_t rc;

	if (d->path == NULL)
		return DD_OK;
	rc = render(v, n, &text);
	if (rc == DD_OK)
		rc = write_file(d->path, text);
	dd_free(text);
	return rc;
}

/* --- opening --------------------------------------------------------- */

static dd_err_t make_parent(const char *path, char *why, size_t why_len)
{
	char *copy = dd_strdup(path);
	const char *dir;
	dd_err_t rc = DD_OK;

	if (copy == NULL)
		return DD_ERR_NOMEM;
	dir = dirname(copy);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		whyf(why, why_len, "cannot create the directory of %s", path);
		rc = DD_ERR_IO;
	}
	dd_free(copy);
	return rc;
}

static dd_err_t read_all(int fd, char **out, size_t *out_len, char *why,
			 size_t why_len)
{
	struct stat st;
	char *text;
	size_t done = 0;
	ssize_t r;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		whyf(why, why_len, "%s", "the devices file must be a regular file "
		     "of ours with mode 0600");
		return DD_ERR_INVALID;
	}
	if ((uint64_t)st.st_size > DD_DEVICES_FILE_MAX) {
		whyf(why, why_len, "%s", "the devices file is too large");
		return DD_ERR_TOO_LARGE;
	}
	text = dd_malloc((size_t)st.st_size + 1);
	if (text == NULL)
		return DD_ERR_NOMEM;
	while (done < (size_t)st.st_size) {
		r = read(fd, text + done, (size_t)st.st_size - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		done += (size_t)r;
	}
	if (done != (size_t)st.st_size) {
		dd_free(text);
		whyf(why, why_len, "%s", "reading the devices file failed");
		return DD_ERR_IO;
	}
	text[done] = '\0';
	*out = text;
	*out_len = done;
	return DD_OK;
}

static dd_err_t load(dd_devices *d, char *why, size_t why_len)
{
	char *text = NULL;
	size_t len = 0;
	int fd;
	dd_err_t rc;

	rc = make_parent(d->path, why, why_len);
	if (rc)
		return rc;
	fd = open(d->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT)
		return DD_OK;
	if (fd < 0) {
		whyf(why, why_len, "cannot open %s", d->path);
		return DD_ERR_IO;
	}
	rc = read_all(fd, &text, &len, why, why_len);
	close(fd);
	if (rc == DD_OK)
		rc = dd_devices_parse(d, text, len, why, why_len);
	dd_free(text);
	return rc;
}

dd_err_t dd_devices_open(const char *path, size_t max, dd_devices **out,
			 char *why, size_t why_len)
{
	dd_devices *d = NULL;
	dd_err_t rc;

	*out = NULL;
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if (max == 0 || max > DD_DEVICES_MAX) {
		whyf(why, why_len, "%s", "the device cap must be 1..4096");
		return DD_ERR_INVALID;
	}
	d = dd_calloc(1, sizeof *d);
	if (d == NULL)
		return DD_ERR_NOMEM;
	d->max = max;
	d->next_id = 1;
	rc = DD_OK;
	if (path != NULL) {
		d->path = dd_strdup(path);
		rc = d->path ? load(d, why, why_len) : DD_ERR_NOMEM;
	}
	if (rc) {
		dd_devices_free(d);
		return rc;
	}
	*out = d;
	return DD_OK;
}

void dd_devices_free(dd_devices *d)
{
	if (d == NULL)
		return;
	dd_free(d->v);
	dd_free(d->path);
	dd_free(d);
}

/* --- changes --------------------------------------------------------- */

static void notify(dd_devices *d, const uint8_t *revoked)
{
	/* A copy: a callback may not unsubscribe, but be safe if it does. */
	struct sub subs[DD_DEVICES_MAX_SUBS];

	memcpy(subs, d->subs, sizeof subs);
	for (size_t i = 0; revoked != NULL && i < DD_DEVICES_MAX_SUBS; i++)
		if (subs[i].id != 0 && subs[i].h.on_revoke != NULL)
			subs[i].h.on_revoke(revoked, subs[i].h.ud);
	for (size_t i = 0; i < DD_DEVICES_MAX_SUBS; i++)
		if (subs[i].id != 0 && subs[i].h.on_change != NULL)
			subs[i].h.on_change(subs[i].h.ud);
}

dd_err_t dd_devices_pair(dd_devices *d, const uint8_t key[DD_DEVICE_KEY_LEN],
			 const char *label, const char *by_login,
			 uint64_t by_id, int64_t now_ms, dd_device *out)
{
	dd_device rec = {0}, *v, *at;
	size_t n = d->n, i;
	dd_err_t rc;

	if (!key_ok(key) ||
	    dd_device_label_parse(label, rec.label, NULL, 0) != DD_OK ||
	    now_ms <= 0 || (uint64_t)now_ms > TIME_MAX_MS ||
	    by_id > INT64_MAX || (by_login != NULL && !login_ok(by_login)))
		return DD_ERR_INVALID;
	memcpy(rec.key, key, DD_DEVICE_KEY_LEN);
	dd_hex_encode(key, DD_DEVICE_KEY_LEN, rec.pubkey);
	snprintf(rec.paired_by, sizeof rec.paired_by, "%s",
		 by_login ? by_login : "");
	rec.paired_by_id = by_id;
	rec.created_at_ms = now_ms;
	at = find(d, key);
	if (at == NULL && n >= d->max)
		return DD_ERR_BUSY;
	/* Build the next state aside; it replaces the current one only once on disk. */
	v = dd_calloc(n + 1, sizeof *v);
	if (v == NULL)
		return DD_ERR_NOMEM;
	if (n > 0)
		memcpy(v, d->v, n * sizeof *v);
	if (at != NULL) {
		v[at - d->v] = rec;
	} else {
		for (i = n; i > 0 && cmp_dev(&v[i - 1], &rec) > 0; i--)
			v[i] = v[i - 1];
		v[i] = rec;
		n++;
	}
	rc = persist(d, v, n);
	if (rc) {
		dd_free(v);
		return rc;
	}
	dd_free(d->v);
	d->v = v;
	d->n = n;
	if (out != NULL)
		*out = rec;
	notify(d, NULL);
	return DD_OK;
}

dd_err_t dd_devices_revoke(dd_devices *d,
			   const uint8_t key[DD_DEVICE_KEY_LEN],
			   int64_t now_ms, dd_device *out)
{
	dd_device *at = find(d, key), *v;
	uint8_t gone[DD_DEVICE_KEY_LEN];
	dd_err_t rc;

	if (at == NULL || at->revoked_at_ms != 0)
		return DD_ERR_NOT_FOUND;
	if (now_ms <= 0 || (uint64_t)now_ms > TIME_MAX_MS)
		return DD_ERR_INVALID;
	v = dd_calloc(d->n, sizeof *v);
	if (v == NULL)
		return DD_ERR_NOMEM;
	memcpy(v, d->v, d->n * sizeof *v);
	v[at - d->v].revoked_at_ms = now_ms;
	rc = persist(d, v, d->n);
	if (rc) {
		dd_free(v);
		return rc;
	}
	memcpy(gone, key, sizeof gone);
	if (out != NULL)
		*out = v[at - d->v];
	dd_free(d->v);
	d->v = v;
	notify(d, gone);
	return DD_OK;
}

dd_err_t dd_devices_subscribe(dd_devices *d, const dd_devices_hooks *h,
			      unsigned *id)
{
	for (size_t i = 0; i < DD_DEVICES_MAX_SUBS; i++) {
		if (d->subs[i].id != 0)
			continue;
		d->subs[i].h = *h;
		d->subs[i].id = d->next_id++;
		if (d->next_id == 0)
			d->next_id = 1;
		*id = d->subs[i].id;
		return DD_OK;
	}
	return DD_ERR_BUSY;
}

void dd_devices_unsubscribe(dd_devices *d, unsigned id)
{
	for (size_t i = 0; id != 0 && i < DD_DEVICES_MAX_SUBS; i++)
		if (d->subs[i].id == id)
			d->subs[i].id = 0;
}
