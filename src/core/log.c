#include "core/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Written once by dd_log_setup() before any other thread exists. */
static struct {
	dd_log_level level;
	dd_log_format format;
	char name[32];
} log_cfg = {DD_LOG_INFO, DD_LOG_LOGFMT, "devopsdefender"};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void dd_log_setup(dd_log_level level, dd_log_format format, const char *name)
{
	log_cfg.level = level;
	log_cfg.format = format;
	if (name != NULL)
		snprintf(log_cfg.name, sizeof log_cfg.name, "%s", name);
}

int dd_log_enabled(dd_log_level level)
{
	return level >= log_cfg.level;
}

dd_err_t dd_log_level_parse(const char *s, dd_log_level *out)
{
	for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (dd_log_level)i;
			return DD_OK;
		}
	}
	return DD_ERR_INVALID;
}

/* Bounded line builder: a log line never allocates and never overflows. */
struct line {
	char buf[4096];
	size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
	size_t room = sizeof l->buf - 2 - l->len; /* keep room for "\n\0" */

	if (n > room)
		n = room;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void put_str(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

static int needs_quote(const char *v)
{
	if (*v == '\0')
		return 1;
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;
		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f)
			return 1;
	}
	return 0;
}

/* Escapes control bytes so a hostile value cannot forge log lines. */
static void put_escaped(struct line *l, const char *v, int json)
{
	char tmp[8];

	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;
		if (c == '"' || c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			put(l, tmp, 2);
		} else if (c == '\n') {
			put_str(l, "\\n");
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(tmp, sizeof tmp, json ? "\\u%04x" : "\\x%02x", c);
			put_str(l, tmp);
		} else {
			put(l, (const char *)&c, 1);
		}
	}
}

static void put_field(struct line *l, const char *k, const char *v, int first)
{
	if (log_cfg.format == DD_LOG_JSON) {
		put_str(l, first ? "{\"" : ",\"");
		put_str(l, k);
		put_str(l, "\":\"");
		put_escaped(l, v, 1);
		put_str(l, "\"");
		return;
	}
	if (!first)
		put_str(l, " ");
	put_str(l, k);
	put_str(l, "=");
	if (needs_quote(v)) {
		put_str(l, "\"");
		put_escaped(l, v, 0);
		put_str(l, "\"");
	} else {
		put_str(l, v);
	}
}

static void put_time(struct line *l)
{
	struct timespec ts;
	struct tm tm;
	char t[96];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(t, sizeof t, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	put_field(l, "ts", t, 1);
}

static void emit(struct line *l)
{
	if (log_cfg.format == DD_LOG_JSON)
		put_str(l, "}");
	l->buf[l->len++] = '\n';
	/* One write per line keeps lines whole when processes share stderr. */
	fwrite(l->buf, 1, l->len, stderr);
	fflush(stderr);
}

static void begin(struct line *l, dd_log_level level, const char *func,
		  const char *rid)
{
	l->len = 0;
	put_time(l);
	put_field(l, "level", level_names[level], 0);
	put_field(l, "proc", log_cfg.name, 0);
	if (func != NULL)
		put_field(l, "func", func, 0);
	if (rid != NULL)
		put_field(l, "rid", rid, 0);
}

void dd_log_vat(dd_log_level level, const char *func, const char *rid,
		const char *fmt, va_list ap)
{
	struct line l;
	char msg[2048];

	if (!dd_log_enabled(level))
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	begin(&l, level, func, rid);
	put_field(&l, "msg", msg, 0);
	emit(&l);
}

void dd_log_at(dd_log_level level, const char *func, const char *rid,
	       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dd_log_vat(level, func, rid, fmt, ap);
	va_end(ap);
}

void dd_log_fields(dd_log_level level, const char *msg, const char *rid,
		   const char *const *keys, const char *const *values)
{
	struct line l;

	if (!dd_log_enabled(level))
		return;
	begin(&l, level, NULL, rid);
	put_field(&l, "msg", msg, 0);
	for (size_t i = 0; keys[i] != NULL; i++) {
		if (values[i] != NULL)
			put_field(&l, keys[i], values[i], 0);
	}
	emit(&l);
}

void dd_log_err_at(dd_err_t rc, const char *func, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (!dd_log_enabled(DD_LOG_ERROR))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	dd_log_at(DD_LOG_ERROR, func, NULL, "%s: %s", msg, dd_strerror(rc));
}
