/*
 * ctl.h - sub-commands of msspctl, one file each under src/cmd/msspctl/.
 * Each takes the arguments after its own name (argv[0] is the sub-command
 * name) and returns the process exit status: 0 success, 1 the checked
 * thing is invalid/refused, 2 usage or I/O error.
 */
#ifndef MSSP_CMD_MSSPCTL_CTL_H
#define MSSP_CMD_MSSPCTL_CTL_H

int ctl_ca(int argc, char **argv);	 /* msspctl ca init|issue|revoke|crl|show  */
int ctl_sig(int argc, char **argv);	 /* msspctl sig verify|sign                */
int ctl_keycheck(int argc, char **argv); /* msspctl keycheck FILE...               */
int ctl_audit_local(int argc, char **argv); /* msspctl audit verify|show (files) */
/* The ME client (me.c): the WHOLE command line (argv[0] = "msspctl"),
 * global options first.  ctl_me_wants() says whether a command line is
 * one of its commands. */
#include <stdbool.h>
int ctl_me(int argc, char **argv);
bool ctl_me_wants(int argc, char **argv);

#endif
