/*
 * unittest.h - reach file-local functions from unit tests.
 *
 * In normal builds UNITTEST means `static`; test objects are compiled with
 * -DMSSP_UNITTEST (see the Makefile) so a test file may declare and call a
 * function its module keeps private (curl's lib/curl_setup.h does the same).
 */
#ifndef MSSP_UNITTEST_H
#define MSSP_UNITTEST_H
#ifdef MSSP_UNITTEST
#define UNITTEST
#else
#define UNITTEST static
#endif
#endif
