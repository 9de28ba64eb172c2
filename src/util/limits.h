/*
 * limits.h - every cap of the platform, in one place.
 *
 * Why one header: a reviewer (or an operator reading the code) can see every
 * bound the server enforces without hunting.  Values are the defaults of
 * docs/bad-inputs.md section 0; the ones an operator may tune are also read
 * from the configuration file later, and must never exceed these maxima.
 */
#ifndef MSSP_LIMITS_H
#define MSSP_LIMITS_H

/* ---- HTTP/1.1 (src/net/http) ------------------------------------------ */
#define MSSP_HTTP_MAX_REQUEST_LINE   4096   /* method + target + version (414) */
#define MSSP_HTTP_MAX_TARGET         2048   /* request-target bytes (414)      */
#define MSSP_HTTP_MAX_HEAD           16384  /* whole header section (431)      */
#define MSSP_HTTP_MAX_HEADERS        64     /* header fields per request (431) */
#define MSSP_HTTP_MAX_BODY           65536  /* decoded body bytes (413)        */
#define MSSP_HTTP_MAX_CHUNK_EXT      256    /* bytes of chunk extensions (400) */
#define MSSP_HTTP_MAX_TRAILERS       16     /* trailer fields (400)            */
#define MSSP_HTTP_MAX_PIPELINE       16     /* requests queued unanswered      */
#define MSSP_HTTP_HEADER_DEADLINE_MS 10000  /* header section must arrive      */
#define MSSP_HTTP_IDLE_MS            30000  /* idle keep-alive                 */
#define MSSP_HTTP_MAX_MEDIA_TOKEN    64     /* media type/subtype/charset      */
#define MSSP_HTTP_MAX_MEDIA_PARAM    512    /* media type action= value        */

/* ---- XML (src/mss/soap) ----------------------------------------------- */
#define MSSP_XML_MAX_DEPTH           32     /* element nesting                 */
#define MSSP_XML_MAX_ATTRS           32     /* attributes per element          */
#define MSSP_XML_MAX_NSDECL          16     /* xmlns declarations per element  */
#define MSSP_XML_MAX_ATTR_LEN        4096   /* one attribute value             */
#define MSSP_XML_MAX_ELEMENTS        4096   /* elements per document           */

/* ---- JSON (src/mss/json) ---------------------------------------------- */
#define MSSP_JSON_MAX_DEPTH          32
#define MSSP_JSON_MAX_ARRAY          256    /* items in one array              */

/* ---- Message fields (src/mss/msg, src/mss/validate) ------------------- */
#define MSSP_MSG_MAX_FIELD           4096   /* ordinary string field           */
#define MSSP_MSG_MAX_DTBS            32768  /* DataToBeSigned, decoded bytes   */
#define MSSP_MSG_MAX_DTBD_CHARS      239    /* DTBD in GSM-7            */
#define MSSP_MSG_MAX_DTBD_UCS2_CHARS 119    /* DTBD if any char is outside GSM */
#define MSSP_MSG_MAX_SIGNATURE       65536  /* Base64Signature text            */
#define MSSP_MSG_MAX_LIST            64     /* repeated elements of one kind   */
#define MSSP_MSG_MAX_TRANSID         64     /* AP_TransID / MSSP_TransID chars */
#define MSSP_MSG_MAX_MSISDN_DIGITS   15     /* E.164                           */
#define MSSP_MSG_MIN_MSISDN_DIGITS   6
#define MSSP_MSG_MAX_TIMEOUT_S       600    /* ASVS 6.5.5: out-of-band <=10min */
#define MSSP_MSG_ARENA_MAX           (1024 * 1024) /* memory for one message   */

/* ---- Signature profiles (src/mss/profile) ----------------------------- */
#define MSSP_PROFILE_MAX_URI         512
#define MSSP_PROFILE_MAX_EXT         16     /* query/fragment parameters       */
#define MSSP_PROFILE_MAX_BRAND       128    /* decoded brand bytes             */
#define MSSP_PROFILE_MAX_LOA_EXT     64     /* bytes after "loaN."             */

#endif
