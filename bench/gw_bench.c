/*
 * gw_bench: the channel of an attested shell, as a ratio against its
 * cryptographic floor measured in the same run (docs/noise.md,
 * "Performance"; issue 7: at least 0.5x).
 *
 *   subject  1 KiB plaintexts through the whole carriage the gateway
 *            uses: dd_noise_transport_encrypt, a binary WebSocket
 *            message between two dd_ws over a unix socketpair on one
 *            libuv loop, and dd_noise_transport_decrypt on arrival;
 *            back-pressure as in the gateway (send until BUSY, resume
 *            on drain). Both directions: "output" (agent to device, how
 *            terminal output flows, the target's direction) and "input"
 *            (device to agent, masked as RFC 6455 requires of clients;
 *            wslay unmasks a byte at a time, which dominates it).
 *   floor    raw ChaCha20-Poly1305 encryption and decryption of 1 KiB
 *            on one reused context each.
 *
 * Both report MB/s of plaintext; rounds alternate which goes first and
 * the figures are medians. Exit status: 0 whatever the ratio, 1 when an
 * operation fails, 2 on bad usage.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/evp.h>
#include <uv.h>

#include "core/alloc.h"
#include "core/strutil.h"
#include "net/ws.h"
#include "noise/noise.h"

#define MSG_LEN 1024
#define MAX_ROUNDS 41

struct pipe_run {
	uv_loop_t loop;
	dd_ws *client, *server;
	dd_ws *tx;               /* the sending side: server (output) or client */
	dd_noise_transport *ti, *tr;
	uint64_t sent, received, want;
	int failed, closed;
	int held;                /* r->ct was refused: send it first */
	uint8_t pt[MSG_LEN], ct[MSG_LEN + DD_NOISE_TAG_LEN], out[MSG_LEN];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sends until the ws pushes back or everything is out. */
static void pump(struct pipe_run *r)
{
	size_t n;
	dd_err_t rc;

	while (r->sent < r->want) {
		if (dd_noise_transport_encrypt(r->ti, r->pt, MSG_LEN, r->ct,
					       sizeof r->ct, &n) != DD_OK) {
			r->failed = 1;
			return;
		}
		rc = dd_ws_send(r->tx, DD_WS_BINARY, r->ct, n);
		if (rc == DD_ERR_BUSY) {
			/* Its nonce is spent: hand it over on drain. */
			r->held = 1;
			return;
		}
		if (rc) {
			r->failed = 1;
			return;
		}
		r->sent++;
	}
}

static void on_drain(dd_ws *ws, void *ud)
{
	struct pipe_run *r = ud;

	if (ws != r->tx)
		return;

	if (r->held) {
		/* The refused message goes first, then the rest. */
		if (dd_ws_send(ws, DD_WS_BINARY, r->ct,
			       MSG_LEN + DD_NOISE_TAG_LEN) != DD_OK)
			return;
		r->held = 0;
		r->sent++;
	}
	pump(r);
}

static void on_message(dd_ws *ws, dd_ws_op op, const uint8_t *data,
		       size_t len, void *ud)
{
	struct pipe_run *r = ud;
	size_t n;

	if (ws == r->tx)
		return;
	if (op != DD_WS_BINARY ||
	    dd_noise_transport_decrypt(r->tr, data, len, r->out,
				       sizeof r->out, &n) != DD_OK ||
	    n != MSG_LEN) {
		r->failed = 1;
		uv_stop(&r->loop);
		return;
	}
	if (++r->received == r->want)
		uv_stop(&r->loop);
}

static void on_close(dd_ws *ws, dd_err_t err, uint16_t code,
		     const char *reason, void *ud)
{
	struct pipe_run *r = ud;

	(void)ws;
	(void)err;
	(void)code;
	(void)reason;
	r->closed++;
}

static int handshake(dd_noise_transport **ti, dd_noise_transport **tr)
{
	dd_static_key ik, rk;
	dd_noise_hs *hi = NULL, *hr = NULL;
	uint8_t m[128];
	size_t n;
	int ok;

	ok = dd_static_key_load(NULL, &ik, (char[64]){0}, 64) == DD_OK &&
	     dd_static_key_load(NULL, &rk, (char[64]){0}, 64) == DD_OK &&
	     dd_noise_hs_new_initiator(&ik, rk.pub, NULL, 0, &hi) == DD_OK &&
	     dd_noise_hs_new_responder(&rk, NULL, 0, &hr) == DD_OK &&
	     dd_noise_hs_write_message(hi, NULL, 0, m, sizeof m, &n) == DD_OK &&
	     dd_noise_hs_read_message(hr, m, n, NULL, 0, NULL) == DD_OK &&
	     dd_noise_hs_write_message(hr, NULL, 0, m, sizeof m, &n) == DD_OK &&
	     dd_noise_hs_read_message(hi, m, n, NULL, 0, NULL) == DD_OK &&
	     dd_noise_hs_split(hi, ti) == DD_OK &&
	     dd_noise_hs_split(hr, tr) == DD_OK;
	dd_noise_hs_free(hi);
	dd_noise_hs_free(hr);
	dd_static_key_wipe(&ik);
	dd_static_key_wipe(&rk);
	return ok;
}

static uv_pipe_t *open_end(uv_loop_t *loop, int fd)
{
	uv_pipe_t *p = dd_malloc(sizeof *p);

	if (p == NULL || uv_pipe_init(loop, p, 0) != 0 || uv_pipe_open(p, fd)) {
		dd_free(p);
		return NULL;
	}
	return p;
}

/*
 * MB/s of plaintext through WebSocket + Noise, or a negative on failure.
 * output: the agent's direction (server to device, frames unmasked), as
 * terminal output flows; else the device's (masked, as RFC 6455 wants).
 */
static double carriage(uint64_t count, int output)
{
	static const dd_ws_handlers h = {NULL, on_message, on_drain, on_close};
	struct pipe_run *r = calloc(1, sizeof *r);
	uv_pipe_t *a, *b;
	dd_ws_opts o;
	int fds[2];
	double t0, t, mbs = -1;

	if (r == NULL || uv_loop_init(&r->loop) != 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
		return -1;
	memset(r->pt, 'k', sizeof r->pt);
	r->want = count;
	a = open_end(&r->loop, fds[0]);
	b = open_end(&r->loop, fds[1]);
	dd_ws_opts_default(&o);
	o.max_message = DD_NOISE_MAX_MSG;
	o.high_water = 256 * 1024;
	if (a == NULL || b == NULL || !handshake(&r->ti, &r->tr) ||
	    dd_ws_from_stream((uv_stream_t *)a, 0, NULL, 0, &o, &h, r,
			      &r->client) != DD_OK ||
	    dd_ws_from_stream((uv_stream_t *)b, 1, NULL, 0, &o, &h, r,
			      &r->server) != DD_OK)
		return -1;
	r->tx = output ? r->server : r->client;
	t0 = now_s();
	pump(r);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	t = now_s() - t0;
	if (!r->failed && r->received == count)
		mbs = (double)count * MSG_LEN / t / 1e6;
	dd_ws_abort(r->client);
	dd_ws_abort(r->server);
	while (r->closed < 2 && uv_run(&r->loop, UV_RUN_ONCE) != 0)
		;
	uv_run(&r->loop, UV_RUN_DEFAULT);
	uv_loop_close(&r->loop);
	dd_noise_transport_free(r->ti);
	dd_noise_transport_free(r->tr);
	free(r);
	return mbs;
}

/* MB/s of raw ChaCha20-Poly1305 encrypt + decrypt of 1 KiB, or negative. */
static double floor_aead(uint64_t count)
{
	EVP_CIPHER_CTX *e = EVP_CIPHER_CTX_new(), *d = EVP_CIPHER_CTX_new();
	uint8_t key[32] = {1}, iv[12] = {0}, pt[MSG_LEN], ct[MSG_LEN],
		out[MSG_LEN], tag[16];
	int n, ok = e != NULL && d != NULL;
	double t0, mbs = -1;

	memset(pt, 'k', sizeof pt);
	ok = ok && EVP_EncryptInit_ex(e, EVP_chacha20_poly1305(), NULL, key, iv) &&
	     EVP_DecryptInit_ex(d, EVP_chacha20_poly1305(), NULL, key, iv);
	t0 = now_s();
	for (uint64_t i = 0; ok && i < count; i++) {
		memcpy(iv + 4, &i, sizeof i);
		ok = EVP_EncryptInit_ex(e, NULL, NULL, NULL, iv) &&
		     EVP_EncryptUpdate(e, ct, &n, pt, MSG_LEN) &&
		     EVP_EncryptFinal_ex(e, ct + n, &n) &&
		     EVP_CIPHER_CTX_ctrl(e, EVP_CTRL_AEAD_GET_TAG, 16, tag) &&
		     EVP_DecryptInit_ex(d, NULL, NULL, NULL, iv) &&
		     EVP_DecryptUpdate(d, out, &n, ct, MSG_LEN) &&
		     EVP_CIPHER_CTX_ctrl(d, EVP_CTRL_AEAD_SET_TAG, 16, tag) &&
		     EVP_DecryptFinal_ex(d, out + n, &n) > 0;
	}
	if (ok)
		mbs = (double)count * MSG_LEN / (now_s() - t0) / 1e6;
	EVP_CIPHER_CTX_free(e);
	EVP_CIPHER_CTX_free(d);
	return mbs;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	static double fl[MAX_ROUNDS], ca[MAX_ROUNDS], in[MAX_ROUNDS];
	uint64_t rounds = 15, count = 20000;
	double f, c, d;

	if (argc > 1 && dd_parse_u64(argv[1], 1, MAX_ROUNDS, &rounds) != DD_OK) {
		fprintf(stderr, "usage: gw_bench [ROUNDS (1-%d)]\n", MAX_ROUNDS);
		return 2;
	}
	for (uint64_t i = 0; i < rounds; i++) {
		if (i % 2 == 0) {
			fl[i] = floor_aead(count);
			ca[i] = carriage(count, 1);
			in[i] = carriage(count, 0);
		} else {
			in[i] = carriage(count, 0);
			ca[i] = carriage(count, 1);
			fl[i] = floor_aead(count);
		}
		if (fl[i] < 0 || ca[i] < 0 || in[i] < 0) {
			fprintf(stderr, "gw_bench: round %llu failed\n",
				(unsigned long long)i);
			return 1;
		}
	}
	f = median(fl, (int)rounds);
	c = median(ca, (int)rounds);
	d = median(in, (int)rounds);
	printf("noise carriage, 1 KiB messages, %llu per round, %llu rounds "
	       "(medians)\n", (unsigned long long)count,
	       (unsigned long long)rounds);
	printf("  floor    raw ChaCha20-Poly1305 enc+dec   %8.1f MB/s\n", f);
	printf("  output   agent -> device (unmasked)      %8.1f MB/s   %.2fx "
	       "(target: at least 0.5x)\n", c, c / f);
	printf("  input    device -> agent (masked)        %8.1f MB/s   %.2fx\n",
	       d, d / f);
	return 0;
}
