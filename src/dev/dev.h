/*
 * dev.h: `devopsdefender dev`, the embedded default. Supervises a whole
 * fleet on loopback (a CP and an agent, each its own process started from
 * this same binary), prints where to point a browser, and on Ctrl-C stops
 * every child it started before exiting.
 */
#ifndef DD_DEV_DEV_H
#define DD_DEV_DEV_H

#include <stdio.h>

/* argv holds the arguments after "dev". Returns the process exit code. */
int dd_dev_main(int argc, char **argv);
/* Prints the dev-specific flags for --help. */
void dd_dev_usage(FILE *out);

#endif
