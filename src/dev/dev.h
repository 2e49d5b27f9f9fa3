/*
 * dev.h: `devopsdefender dev`, the embedded default. Supervises a whole
 * fleet on loopback (the local issuers, a CP, and two agents each in
 * front of its own local runtime and sessiond; every one its own process
 * started from this same binary), prints where to point a browser, how
 * to sign in and deploy, and how to pair a device and open a shell, and
 * on Ctrl-C stops every child it started before exiting
 * (docs/control-plane.md, "Dev fleet").
 */
#ifndef DD_DEV_DEV_H
#define DD_DEV_DEV_H

#include <stdio.h>

/* argv holds the arguments after "dev". Returns the process exit code. */
int dd_dev_main(int argc, char **argv);
/* Prints the dev-specific flags for --help. */
void dd_dev_usage(FILE *out);

#endif
