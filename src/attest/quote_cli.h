/*
 * quote_cli.h: `devopsdefender quote [FILE|-] [--collateral FILE]
 * [--now TIME]`, for checking a quote by hand.
 *
 * Reads a quote as raw bytes, hex or Base64, prints every parsed field and
 * the verification result as one JSON object on stdout, and exits 0 when
 * the quote verifies, 1 when it is refused (the JSON says why), 2 on a
 * usage error. Simulated quotes verify only with DD_DEV=1, as everywhere.
 */
#ifndef DD_ATTEST_QUOTE_CLI_H
#define DD_ATTEST_QUOTE_CLI_H

/* argv holds the arguments after "quote". Returns the exit code. */
int dd_quote_cli_main(int argc, char **argv);

#endif
