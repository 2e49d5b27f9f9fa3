#include "client/client_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/alloc.h"
#include "core/strutil.h"

#define RELAY_CHUNK 16384

struct dd_tls_relay {
	SSL_CTX *ctx;
	SSL *ssl;
	int tcp;        /* the TLS connection's socket */
	int pair;       /* the relay's socketpair end */
	pthread_t thread;
	int started;
};

static int wait_fd(int fd, short ev, int ms)
{
	struct pollfd p = {.fd = fd, .events = ev};
	int r;

	do {
		r = poll(&p, 1, ms);
	} while (r < 0 && errno == EINTR);
	return r;
}

/* A connected blocking socket with send/receive timeouts, or -1. */
static dd_err_t tcp_connect(const char *host, const char *port, int ms,
			    int *out, char *why, size_t why_len)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL, *ai;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	int fd = -1, err = 0, r;
	socklen_t el = sizeof err;

	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0)
		return dd_why(why, why_len, DD_ERR_NOT_FOUND, "%s: %s", host,
			      gai_strerror(r));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
			    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0)
			continue;
		r = connect(fd, ai->ai_addr, ai->ai_addrlen);
		if (r != 0 && errno == EINPROGRESS &&
		    wait_fd(fd, POLLOUT, ms) == 1 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 &&
		    err == 0)
			r = 0;
		if (r == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return dd_why(why, why_len, DD_ERR_IO,
			      "cannot connect to %s:%s",
			      host, port);
	/* Blocking from here on, with the deadline as socket timeouts for
	 * the handshake. */
	if (fcntl(fd, F_SETFL, 0) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
		close(fd);
		return dd_why(why, why_len, DD_ERR_IO, "socket options: %s",
			      dd_strerrno(errno));
	}
	*out = fd;
	return DD_OK;
}

static dd_err_t make_ctx(const char *ca_file, SSL_CTX **out, char *why,
			 size_t why_len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return dd_why(why, why_len, DD_ERR_NOMEM, "TLS context");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* Without AUTO_RETRY a session ticket read after the handshake
	 * returns WANT_READ instead of blocking for application data. */
	SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
	if (SSL_CTX_set_default_verify_paths(ctx) != 1 ||
	    (ca_file != NULL &&
	     SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)) {
		SSL_CTX_free(ctx);
		return dd_why(why, why_len, DD_ERR_CONFIG, "CA file %s: "
			      "unreadable or not PEM", ca_file != NULL ?
			      ca_file : "(system)");
	}
	*out = ctx;
	return DD_OK;
}

static dd_err_t handshake(dd_tls_relay *r, const char *host, char *why,
			  size_t why_len)
{
	long v;

	r->ssl = SSL_new(r->ctx);
	if (r->ssl == NULL || SSL_set_fd(r->ssl, r->tcp) != 1)
		return dd_why(why, why_len, DD_ERR_NOMEM, "TLS session");
	/* SNI for names only; verification for both (IP SANs for IPs). */
	if (strspn(host, "0123456789.:") != strlen(host)) {
		/* A writable copy: the OpenSSL macro casts away const. */
		char sni[256];

		snprintf(sni, sizeof sni, "%s", host);
		if (SSL_set_tlsext_host_name(r->ssl, sni) != 1)
			return dd_why(why, why_len, DD_ERR_INVALID,
				      "SNI %s", host);
	}
	if (SSL_set1_host(r->ssl, host) != 1)
		return dd_why(why, why_len, DD_ERR_INVALID, "host %s", host);
	if (SSL_connect(r->ssl) != 1) {
		v = SSL_get_verify_result(r->ssl);
		ERR_clear_error();
		if (v != X509_V_OK)
			return dd_why(why, why_len, DD_ERR_CRYPTO,
				      "TLS certificate of %s refused: %s", host,
				      X509_verify_cert_error_string(v));
		return dd_why(why, why_len, DD_ERR_CRYPTO, "TLS handshake with "
			      "%s failed", host);
	}
	return DD_OK;
}

/* Writes all of buf to the TLS connection (blocking socket). */
static int tls_write_all(SSL *ssl, const uint8_t *buf, size_t n)
{
	size_t done = 0;
	int w;

	while (done < n) {
		w = SSL_write(ssl, buf + done, (int)(n - done));
		if (w > 0) {
			done += (size_t)w;
			continue;
		}
		if (SSL_get_error(ssl, w) != SSL_ERROR_WANT_READ)
			return -1;
	}
	return 0;
}

static int fd_write_all(int fd, const uint8_t *buf, size_t n)
{
	size_t done = 0;
	ssize_t w;

	while (done < n) {
		w = write(fd, buf + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		done += (size_t)w;
	}
	return 0;
}

/* TLS -> pair: what is readable now. 1 to go on, 0 at the end. */
static int pump_in(dd_tls_relay *r, uint8_t *buf)
{
	int n, e;

	do {
		n = SSL_read(r->ssl, buf, RELAY_CHUNK);
		if (n <= 0) {
			e = SSL_get_error(r->ssl, n);
			return e == SSL_ERROR_WANT_READ ||
			       e == SSL_ERROR_WANT_WRITE;
		}
		if (fd_write_all(r->pair, buf, (size_t)n) != 0)
			return 0;
	} while (SSL_pending(r->ssl) > 0);
	return 1;
}

static void *relay_main(void *arg)
{
	dd_tls_relay *r = arg;
	struct timeval none = {0};
	struct pollfd p[2];
	uint8_t buf[RELAY_CHUNK];
	ssize_t n;
	int go = 1;

	/* The handshake's timeouts must not cut an idle shell. */
	(void)setsockopt(r->tcp, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
	(void)setsockopt(r->tcp, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
	while (go) {
		p[0] = (struct pollfd){.fd = r->tcp, .events = POLLIN};
		p[1] = (struct pollfd){.fd = r->pair, .events = POLLIN};
		if (SSL_pending(r->ssl) == 0 && poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (SSL_pending(r->ssl) > 0 ||
		    (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			go = pump_in(r, buf);
		if (go && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			n = read(r->pair, buf, sizeof buf);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || tls_write_all(r->ssl, buf, (size_t)n))
				go = 0;
		}
	}
	(void)SSL_shutdown(r->ssl);
	OPENSSL_cleanse(buf, sizeof buf);
	/* The ws sees EOF. */
	(void)shutdown(r->pair, SHUT_RDWR);
	return NULL;
}

void dd_tls_relay_free(dd_tls_relay *r)
{
	if (r == NULL)
		return;
	if (r->started)
		(void)pthread_join(r->thread, NULL);
	SSL_free(r->ssl);
	SSL_CTX_free(r->ctx);
	if (r->tcp >= 0)
		close(r->tcp);
	if (r->pair >= 0)
		close(r->pair);
	dd_free(r);
}

dd_err_t dd_tls_relay_open(const char *host, const char *port,
			   const char *ca_file, uint64_t timeout_ms, int *fd,
			   dd_tls_relay **out, char *why, size_t why_len)
{
	dd_tls_relay *r;
	int sv[2] = {-1, -1};
	int ms = timeout_ms > 600000 ? 600000 : (int)timeout_ms;
	dd_err_t rc;

	*out = NULL;
	*fd = -1;
	r = dd_calloc(1, sizeof *r);
	if (r == NULL)
		return dd_why(why, why_len, DD_ERR_NOMEM, "out of memory");
	r->tcp = r->pair = -1;
	rc = make_ctx(ca_file, &r->ctx, why, why_len);
	if (!rc)
		rc = tcp_connect(host, port, ms, &r->tcp, why, why_len);
	if (!rc)
		rc = handshake(r, host, why, why_len);
	if (!rc && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		rc = dd_why(why, why_len, DD_ERR_IO, "socketpair: %s",
			    dd_strerrno(errno));
	if (!rc) {
		r->pair = sv[1];
		if (pthread_create(&r->thread, NULL, relay_main, r) != 0) {
			close(sv[0]);
			rc = dd_why(why, why_len, DD_ERR_NOMEM, "relay thread");
		} else {
			r->started = 1;
			*fd = sv[0];
		}
	}
	if (rc) {
		dd_tls_relay_free(r);
		return rc;
	}
	*out = r;
	return DD_OK;
}
