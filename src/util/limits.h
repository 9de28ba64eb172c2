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
#define MSSP_MSG_MAX_LIST            64     /* repeated elements of one kind   */
#define MSSP_MSG_MAX_TRANSID         64     /* AP_TransID / MSSP_TransID chars */
#define MSSP_MSG_MAX_MSISDN_DIGITS   15     /* E.164                           */
#define MSSP_MSG_MIN_MSISDN_DIGITS   6
#define MSSP_MSG_MAX_TIMEOUT_S       600    /* ASVS 6.5.5: out-of-band <=10min */
#define MSSP_MSG_ARENA_MAX           (1024 * 1024) /* memory for one message   */
#define MSSP_MSG_ARENA_BLOCK         4096   /* arena allocation granule        */
#define MSSP_MSG_MAX_INT_DIGITS      32     /* digits of an xs:integer field   */
#define MSSP_MSG_MAX_VERSION         1000   /* MajorVersion/MinorVersion value */
#define MSSP_MSG_MAX_EVENTID         32     /* fi:EventID characters           */
#define MSSP_MSG_MAX_NOSPAM          32     /* fi:NoSpamCode characters        */
#define MSSP_MSG_MIN_DISPLAYNAME     2      /* fi:DisplayName characters       */
#define MSSP_MSG_MAX_DISPLAYNAME     64
#define MSSP_MSG_MAX_RECEIPT         2048   /* receipt message bytes (103)     */

/* ---- Configuration file (src/util/config) ----------------------------- */
#define MSSP_CFG_MAX_BYTES           (256 * 1024)
#define MSSP_CFG_MAX_LINE            4096
#define MSSP_CFG_MAX_LINES           20000
#define MSSP_CFG_MAX_SECTIONS        1024   /* e.g. one [ap "..."] per AP      */
#define MSSP_CFG_MAX_KEYS            64     /* keys in one section             */
#define MSSP_CFG_ARENA               (4 * 1024 * 1024)

/* ---- Metrics (src/util/metrics) --------------------------------------- */
#define MSSP_METRICS_MAX_SERIES      512    /* series in one registry          */
#define MSSP_METRICS_MAX_NAME        96     /* family name bytes               */
#define MSSP_METRICS_MAX_LABELS      160    /* label text bytes                */
#define MSSP_METRICS_MAX_HELP        160    /* help line bytes                 */
#define MSSP_METRICS_MAX_BUCKETS     16     /* histogram upper bounds          */

/* ---- Signature profiles (src/mss/profile) ----------------------------- */
#define MSSP_PROFILE_MAX_URI         512
#define MSSP_PROFILE_MAX_EXT         16     /* query/fragment parameters       */
#define MSSP_PROFILE_MAX_BRAND       128    /* decoded brand bytes             */
#define MSSP_PROFILE_MAX_LOA_EXT     64     /* bytes after "loaN."             */

/* ---- PKI: built-in CA (src/pki/ca) ------------------------------------ */
#define MSSP_CA_MAX_CSR_DER          16384  /* PKCS#10 DER bytes (K-11)        */
#define MSSP_CA_MAX_OCSP_REQ         8192   /* OCSPRequest DER bytes           */
#define MSSP_CA_MAX_OCSP_IDS         16     /* CertIDs in one OCSP request     */
#define MSSP_CA_MAX_OCSP_NONCE       34     /* nonce extension value bytes:
                                             * RFC 8954's 32 octets + DER tag  */
#define MSSP_CA_DB_MAX_RECORDS       65536  /* issued certificates per CA dir  */
#define MSSP_CA_DB_MAX_LINE          2048   /* one database line               */
#define MSSP_CA_MAX_SUBJECT          1536   /* RFC 2253 subject text in the db */
#define MSSP_CA_MAX_NAME_VALUE       64     /* one RDN value (ub-common-name)  */
#define MSSP_CA_CONF_MAX_LINE        1024   /* one ca.conf line                */
#define MSSP_CA_CONF_MAX_LINES       256
#define MSSP_CA_MAX_PROFILES         8      /* certificate profiles per CA     */
#define MSSP_CA_MAX_POLICIES         4      /* policy OIDs per profile         */
#define MSSP_CA_MAX_OID              64     /* dotted OID text                 */
#define MSSP_CA_MAX_URL              256    /* CRL / OCSP URL in certificates  */
#define MSSP_CA_MAX_FILE             65536  /* ca.crt, chain.pem, ca.key, conf */
#define MSSP_CA_MAX_SECRET           1024   /* pass phrase or PIN bytes        */
#define MSSP_CA_MIN_PASSPHRASE       12     /* key file pass phrase bytes      */
#define MSSP_CA_MAX_DAYS             18262  /* any validity: 50 years          */
#define MSSP_CA_MAX_HOURS            8784   /* CRL / OCSP nextUpdate: 1 year   */
#define MSSP_CA_SCRYPT_LOG2_N        14     /* key file KDF: N = 2^14, r = 8,  */
#define MSSP_CA_SCRYPT_R             8      /* p = 5 (OWASP's equivalent of    */
#define MSSP_CA_SCRYPT_P             5      /* N = 2^17, p = 1 within 16 MiB)  */

/* ---- PKI: phone keystore (src/phone/keystore) ------------------------- */
#define MSSP_KEYSTORE_DEFAULT_GROUPS 5      /* key groups per device file      */
#define MSSP_KEYSTORE_MAX_GROUPS     16     /* configurable up to this         */
#define MSSP_KEYSTORE_PIN_TRIES      3      /* wrong PINs before 402           */
#define MSSP_KEYSTORE_PUK_TRIES      10     /* wrong PUKs before 403 for ever  */
#define MSSP_KEYSTORE_PIN_MIN_LEN    4      /* PIN digits: bounds a keystore   */
#define MSSP_KEYSTORE_PIN_MAX_LEN    8      /* may narrow, never widen         */
#define MSSP_KEYSTORE_PUK_LEN        8      /* PUK digits, exactly             */
#define MSSP_KEYSTORE_SCRYPT_LOG2N   15     /* PIN KDF: N = 2^15, r = 8, p = 1 */
#define MSSP_KEYSTORE_SCRYPT_MIN_LOG2N 10   /* tests may lower N, not below    */
#define MSSP_KEYSTORE_SCRYPT_MAX_LOG2N 18   /* a file may ask at most 256 MiB  */
#define MSSP_KEYSTORE_SCRYPT_R       8
#define MSSP_KEYSTORE_SCRYPT_P       1
#define MSSP_KEYSTORE_SALT_LEN       16     /* random salt per wrapping        */
#define MSSP_KEYSTORE_MAX_ID         64     /* group id / device id chars      */
#define MSSP_KEYSTORE_MAX_PROFILES   8      /* profile URIs per group          */
#define MSSP_KEYSTORE_MAX_CHAIN      4      /* CA certificates above the user's */
#define MSSP_KEYSTORE_MAX_CERT       8192   /* DER bytes of one certificate    */
#define MSSP_KEYSTORE_MAX_SPKI       1024   /* DER bytes of a public key       */
#define MSSP_KEYSTORE_MAX_PKCS8      4096   /* DER bytes of a private key      */
#define MSSP_KEYSTORE_MAX_DTBS       MSSP_MSG_MAX_DTBS /* one DTBS to sign   */
#define MSSP_KEYSTORE_MAX_FILE       (2 * 1024 * 1024) /* whole keystore file  */
#define MSSP_KEYSTORE_MAX_PATH       4096   /* keystore path bytes             */
#define MSSP_KEYSTORE_MAX_DIR_SCAN   65536  /* entries looked at for stale
                                             * temporary files at open         */

/* ---- PKI: key checks (src/pki/keycheck) ------------------------------ */
#define MSSP_KEYCHECK_MAX_INPUT      (256 * 1024) /* one key/cert/CSR file     */
#define MSSP_KEYCHECK_MAX_PEM_BLOCKS 16     /* PEM blocks skipped to find a key */
#define MSSP_KEYCHECK_MAX_RSA_BITS   16384  /* hard cap, whatever the policy    */
#define MSSP_KEYCHECK_SMALL_PRIMES   752    /* trial division by primes below
                                             * this (EJBCA's bound, K-01)       */
#define MSSP_KEYCHECK_FERMAT_ROUNDS  100    /* CA/B BR 6.1.1.3(5), K-03         */
#define MSSP_KEYCHECK_MAX_KNOWN      (1u << 22) /* fingerprints in one set:
                                             * 128 MiB at most                  */
#define MSSP_KEYCHECK_MAX_LINE       1024   /* one line of a fingerprint file   */
#define MSSP_KEYCHECK_MAX_BATCH      4096   /* moduli in one shared-prime run   */

/* ---- PKI: signatures (src/pki/sig) ------------------------------------ */
#define MSSP_PKI_SIG_MAX_CMS         65536  /* DER CMS SignedData verified (S-10);
                                             * Base64Signature text is capped at
                                             * the same size, so this never bites
                                             * a well-formed answer             */
#define MSSP_PKI_SIG_MAX_CMS_CERTS   8      /* certificates inside one CMS     */
#define MSSP_PKI_SIG_MAX_ATTRS       16     /* signed attributes of the signer */
#define MSSP_PKI_SIG_MAX_DEPTH       8      /* certificate path length          */
#define MSSP_PKI_SIG_MAX_DATA        (1024 * 1024) /* data signed or verified */
#define MSSP_PKI_SIG_MAX_RAW         2048   /* raw signature value bytes (RSA
                                             * 16384 bits at most)              */
#define MSSP_PKI_SIG_CTL_MAX_FILE    (4 * 1024 * 1024) /* msspctl sig: one
                                             * PEM/DER input file (CA bundles)  */
#define MSSP_PKI_SIG_CTL_MAX_OBJECTS 256    /* PEM blocks read from one file   */
#define MSSP_PKI_SIG_CTL_MAX_FILES   16     /* repeated --ca / --crl options   */

/* ---- Store: durable transactions (src/store) -------------------------- */
#define MSSP_STORE_MAX_URI           4096   /* "sqlite:/path" or PostgreSQL URI */
#define MSSP_STORE_TRANSID_BYTES     16     /* CSPRNG bytes in an MSSP_TransID:
                                             * 128 bits (A-03, ASVS 11.5.1)     */
#define MSSP_STORE_MAX_AP_ID         1024   /* AP_ID (anyURI) bytes            */
#define MSSP_STORE_MIN_HASH          16     /* canonical request hash bytes    */
#define MSSP_STORE_MAX_HASH          64     /* (SHA-512 at most)               */
#define MSSP_STORE_MAX_MSISDN        64     /* normalised user identifier      */
#define MSSP_STORE_MAX_KEY_ID        128    /* key / key group id chosen       */
#define MSSP_STORE_MIN_NONCE         16     /* device correlation nonce chars  */
#define MSSP_STORE_MAX_NONCE         128
#define MSSP_STORE_MAX_URL           2048   /* notification URL bytes          */
#define MSSP_STORE_MAX_REQUEST       (2 * MSSP_HTTP_MAX_BODY) /* request
                                             * document (JSON mirror text): a
                                             * maximal body never exceeds it   */
#define MSSP_STORE_MAX_ANSWER        (2 * MSSP_PKI_SIG_MAX_CMS) /* raw device
                                             * answer bytes, as received       */
#define MSSP_STORE_MAX_SIGNATURE     ((MSSP_PKI_SIG_MAX_CMS + 2) / 3 * 4) /*
                                             * base64 of the largest CMS       */
#define MSSP_STORE_MAX_DETAIL        256    /* final-state detail text         */
#define MSSP_STORE_MAX_NAME          128    /* user display name               */
#define MSSP_STORE_MAX_SPKI          1024   /* device public key, SPKI DER     */
#define MSSP_STORE_MAX_PUSH_TOKEN    256    /* push-provider token             */
#define MSSP_STORE_MAX_PROFILES_TEXT 2048   /* a key's profile URIs, joined    */
#define MSSP_STORE_MAX_CERT          4096   /* a user certificate, DER         */
#define MSSP_STORE_MAX_SERIAL        40     /* certificate serial, hex         */
#define MSSP_STORE_MAX_USER_KEYS     8      /* key groups per user             */
#define MSSP_STORE_MAX_USER_DEVICES  4      /* devices bound to one user       */
#define MSSP_STORE_MAX_RECEIPT       8192   /* receipt record (caller's text)  */
#define MSSP_STORE_MAX_TTL_MS        (24LL * 3600 * 1000) /* deadline sanity:
                                             * the validator enforces TimeOut  */
#define MSSP_STORE_BUSY_TIMEOUT_MS   5000   /* wait for the write lock (900)   */
#define MSSP_STORE_ID_RETRIES        4      /* fresh ids after a key collision */
#define MSSP_STORE_SCAN_BATCH        64     /* rows per page: recovery scan and
                                             * bulk expiry (one DB txn each)   */
#define MSSP_STORE_MAX_SCAN          (1024 * 1024) /* rows one scan or expiry
                                             * call visits at most             */
#define MSSP_STORE_REOPEN_MIN_MS     250    /* reconnect back-off after the    */
#define MSSP_STORE_REOPEN_MAX_MS     30000  /* database became unavailable     */
/* -- store group commit (store_sqlite.c writer thread) -- */
#define MSSP_STORE_GROUP_MAX         256    /* writes per group: one database
                                             * transaction, one commit/fsync   */

/* ---- Server: loops, listeners, connections (src/net/loop, server) ---- */
/* The connection and parking caps are defaults that a configuration may
 * lower; MSSP_SRV_MAX_CONNS is also the ceiling of all three. */
#define MSSP_SRV_MAX_WORKERS         16     /* loop threads                    */
#define MSSP_SRV_MAX_LISTENERS       8      /* listening addresses per server  */
#define MSSP_SRV_MAX_NAME            32     /* listener name in logs           */
#define MSSP_SRV_BACKLOG             1024   /* listen(2) backlog per socket    */
#define MSSP_SRV_MAX_CONNS           20000  /* open connections, all workers   */
#define MSSP_SRV_CONNS_PER_IP        256    /* from one IPv4 address or IPv6
                                             * /64 (H-03)                      */
#define MSSP_SRV_PARKED              10000  /* requests parked, all workers    */
#define MSSP_SRV_HANDSHAKE_MS        10000  /* TLS handshake deadline (H-03)   */
#define MSSP_SRV_WRITE_MS            10000  /* no write progress this long:
                                             * close (slow read, H-03)         */
#define MSSP_SRV_BODY_MIN_RATE       1024   /* body bytes/s, checked once per  */
#define MSSP_SRV_RATE_WINDOW_MS      5000   /* window (slow POST, H-03)        */
#define MSSP_SRV_LINGER_MS           2000   /* read-and-discard after our close */
#define MSSP_SRV_LINGER_BYTES        65536  /* ... at most this many bytes     */
#define MSSP_SRV_MAX_DEADLINE_MS     600000 /* any configured deadline         */
#define MSSP_SRV_MAX_PARK_MS         ((MSSP_MSG_MAX_TIMEOUT_S + 60) * 1000) /*
                                             * a parked request's own deadline */
#define MSSP_SRV_IN_HIGH             MSSP_HTTP_MAX_HEAD /* unparsed input held
                                             * while a request is handled or
                                             * parked (pipelined bytes, H-09)  */
#define MSSP_SRV_OUT_HIGH            65536  /* queued output that pauses
                                             * parsing of further requests     */
#define MSSP_SRV_MAX_RESPONSE        (1024 * 1024) /* one response body        */
#define MSSP_SRV_MAX_RESP_HEAD       4096   /* status line + response headers  */
#define MSSP_SRV_MAX_RESP_HEADERS    16     /* extra headers in one response   */
#define MSSP_SRV_MAX_HEADER_NAME     64     /* one extra header's name         */
#define MSSP_SRV_PARSER_CACHE        64     /* idle parsers kept per worker
                                             * and listener                    */
#define MSSP_SRV_PARK_BUCKETS        4096   /* parked-request hash, per worker
                                             * (a power of two)                */
#define MSSP_SRV_IP_BUCKETS          4096   /* per-IP count hash (power of 2)  */
#define MSSP_SRV_ACCEPT_PAUSE_MS     100    /* listener rest after EMFILE      */
#define MSSP_LOOP_MAX_QUEUE          65536  /* cross-thread calls pending on
                                             * one loop (async replies)        */

/* ---- Server: TLS (src/net/tls) ---------------------------------------- */
#define MSSP_TLS_SECURITY_LEVEL      2      /* OpenSSL: RSA >= 2048, no SHA-1  */
#define MSSP_TLS_VERIFY_DEPTH        4      /* CA certs above a client leaf    */
#define MSSP_TLS_MAX_VERIFY_DEPTH    5      /* configurable up to (T-10)       */
#define MSSP_TLS_MAX_CERT_LIST       32768  /* bytes of a peer's Certificate
                                             * message (T-10)                  */
#define MSSP_TLS_SESSION_CACHE       20480  /* server session cache entries    */
#define MSSP_TLS_SESSION_TIMEOUT_S   3600   /* session and ticket lifetime     */
#define MSSP_TLS_TICKETS             1      /* TLS 1.3 tickets per handshake   */
#define MSSP_TLS_MAX_FILE            (1024 * 1024) /* certificate/key/CA file  */
#define MSSP_TLS_MAX_CRL_FILE        (32 * 1024 * 1024) /* CRL file            */
#define MSSP_TLS_MAX_CHAIN           8      /* CA certificates after the leaf  */
#define MSSP_TLS_MAX_CA_CERTS        256    /* trust anchors (or CRLs) per file */


/* ---- Worker pool (util/pool) ----------------------------------------- */
#define MSSP_POOL_MAX_THREADS        64
#define MSSP_POOL_MAX_QUEUE          65536  /* jobs waiting, default cap       */

/* ---- App channel (pki/e2e, net/ws, net/wsclient, roles/afe) --------- */
#define MSSP_E2E_MAX_PLAIN           (160 * 1024) /* one app message       */
#define MSSP_WS_MAX_MESSAGE          (256 * 1024) /* one WebSocket message */
#define MSSP_WSC_CONNECT_MS          10000  /* connect + TLS + upgrade         */
#define MSSP_SRV_UP_MAX_OUTPUT       (1024 * 1024) /* queued on an upgraded
						   * connection before it is
						   * closed as too slow      */
/* added with src/net/ws.c, wsclient.c and the server upgrade: */
#define MSSP_WS_CLOSE_MS             5000   /* wsclient: close handshake and the
                                             * server's TCP close after it     */
#define MSSP_WSC_MAX_OUTPUT          (1024 * 1024) /* queued by a wsclient    */
#define MSSP_WSC_MAX_HOST            253    /* wc_host (a DNS name)            */
#define MSSP_WSC_MAX_PATH            1024   /* wc_path                         */
#define MSSP_APPMSG_MAX_TEXT         256    /* AP display name in a prompt     */
#define MSSP_APPMSG_MAX_MIME         64
#define MSSP_AFE_AUTH_MS             10000  /* upgrade -> authenticated        */
#define MSSP_AFE_PING_MS             25000  /* keep-alive ping interval        */
#define MSSP_AFE_IDLE_MS             60000  /* nothing received: close         */
#define MSSP_AFE_MAX_DEVICES         100000 /* connected devices per node      */

/* ---- Outbound HTTP (net/client) --------------------------------------- */
#define MSSP_HTTPC_MAX_INFLIGHT      1024
#define MSSP_HTTPC_MAX_RESPONSE      65536
#define MSSP_HTTPC_TIMEOUT_MS        10000
/* added with src/net/client.c: */
#define MSSP_HTTPC_MAX_TIMEOUT_MS    300000 /* a request's own total timeout   */
#define MSSP_HTTPC_MAX_URL           2048   /* = MSSP_STORE_MAX_URL            */
#define MSSP_HTTPC_MAX_REQUEST       MSSP_HTTP_MAX_BODY /* POST body: what our
                                             * own server would accept         */
#define MSSP_HTTPC_MAX_HEADER        512    /* Content-Type / SOAPAction value */
#define MSSP_HTTPC_MAX_CONNECTS      64     /* idle keep-alive connections kept
                                             * per handle                      */

/* ---- msspd configuration and roles (roles/conf, ae, home) ----------- */
#define MSSP_CONF_MAX_AP_CERTS       4      /* fingerprints per AP (rotation)  */
#define MSSP_CONF_MAX_APS            1000   /* [ap] sections                   */
#define MSSP_CONF_MAX_LIST           64     /* profiles / URL prefixes per AP  */
#define MSSP_AE_NOTIFY_BODY          (64 * 1024) /* notification envelope     */
#define MSSP_AE_SWEEP_MS             1000   /* wall-clock expiry sweep period  */
#define MSSP_AE_PARK_GRACE_MS        5000   /* park deadline past TimeOut: the
					     * monotonic expiry answers first */
#define MSSP_HOME_MAX_PENDING        64     /* prompts kept per device for a
					     * reconnect                       */
#define MSSP_HOME_FINAL_TRIES        3      /* final commit of an answer       */
#define MSSP_HOME_FINAL_RETRY_MS     100    /* first back-off, doubling        */
#define MSSP_HOME_DEV_BUCKETS        1024   /* device table hash buckets       */
#define MSSP_AE_WAIT_BUCKETS         4096   /* waiter table hash buckets       */
#define MSSP_AE_TIMER_BUCKETS        4096   /* TimeOut timer hash buckets      */
#define MSSP_AE_RATE_BUCKETS         256    /* per-AP state hash buckets       */
#define MSSP_AE_OP_PARK_MS           60000  /* status/receipt/profile: the pool
					     * answers within this             */
#define MSSP_AE_START_MARGIN_MS      1000   /* a signature job that starts this
					     * close to its deadline is refused */
#define MSSP_AE_MAX_WAITERS          8      /* parked resends of one synchronous
					     * transaction                     */
#define MSSP_AE_NOTIFY_MAX_BACKOFF_MS 600000
#define MSSP_AE_STUCK_SCAN_MS        60000  /* look for answers not finalised */
#define MSSP_AE_STUCK_AGE_MS         30000  /* ... older than this            */
#define MSSP_ADMIN_HEALTH_PARK_MS    5000
#define MSSP_AE_MAX_SUBJECT          512    /* certificate subject in a profile
					     * query answer                    */

/* ---- msspd init (cmd/msspd/init.c) ---------------------------------- */
#define MSSP_INIT_MAX_BENCH_USERS    10000  /* --bench-users M, at most        */
#define MSSP_INIT_MAX_PATH           4096   /* any path init builds under DIR  */
#define MSSP_INIT_MAX_CONF           (64 * 1024) /* one generated config file  */

/* ---- App front end (roles/afe) and local push (roles/push) ----------- */
#define MSSP_AFE_MAX_SIG             256    /* device auth signature, DER
                                             * (ECDSA P-256: at most 72)       */
#define MSSP_AFE_CLOSE_MS            5000   /* our close frame -> transport
                                             * closed even if the peer is mute */
#define MSSP_AFE_REG_MIN_BUCKETS     256    /* device registry, initial size   */
#define MSSP_PUSH_MAX_DGRAM          128    /* "mssp-wake 1 <id>\n" fits       */

/* ---- Phone app (src/phone/app, src/cmd/mss-phone) -------------------- */
#define MSSP_PHONE_MAX_NONCES        1024   /* recent prompt nonces remembered
                                             * per device (never prompt twice) */
#define MSSP_PHONE_MAX_PROMPTS       16     /* prompts waiting per device      */
#define MSSP_PHONE_MAX_ANSWERS       64     /* unacknowledged answers kept     */
#define MSSP_PHONE_MAX_DEVICES       20000  /* devices one mss-phone runs      */
#define MSSP_PHONE_MAX_ADDR          64     /* numeric address text            */
#define MSSP_PHONE_MAX_HOST          255    /* AFE host name (DNS)             */
#define MSSP_PHONE_MAX_PATH          4096   /* a path built from the data dir  */
#define MSSP_PHONE_MAX_FILE          16384  /* device.conf / device.key bytes  */
#define MSSP_PHONE_BACKOFF_MIN_MS    1000   /* reconnect back-off: first, then */
#define MSSP_PHONE_BACKOFF_MAX_MS    30000  /* doubling up to this             */
#define MSSP_PHONE_JITTER_PCT        20     /* +/- this share of the back-off  */
#define MSSP_PHONE_START_SPREAD_MS   5000   /* first connects spread over at
                                             * most this (bench: many devices) */
#define MSSP_PHONE_CLOSE_WAIT_MS     1000   /* close handshakes at exit        */
#define MSSP_PHONE_MAX_INPUT         1024   /* one line typed at a prompt      */
#define MSSP_PHONE_MAX_WAKES         64     /* wake datagrams read per event   */

/* ---- mss-ap: the AP client and load generator (src/cmd/mss-ap) -------- */
#define MSSP_AP_MAX_REQUEST          (4 * MSSP_HTTP_MAX_BODY) /* an encoded
                                             * request (larger than the AE
                                             * accepts, so 413 can be tried) */
#define MSSP_AP_MAX_RESPONSE         (256 * 1024) /* one response body        */
#define MSSP_AP_CONNECT_MS           10000  /* TCP + TLS connect              */
#define MSSP_AP_HTTP_SLACK_S         15     /* exchange deadline beyond TimeOut */
#define MSSP_AP_NOTIFY_GRACE_S       10     /* wait for a notification beyond
                                             * TimeOut                        */
#define MSSP_AP_NOTIFY_FLUSH_MS      2000   /* receipt answer leaving, at most */
#define MSSP_AP_MIN_POLL_MS          10     /* --poll-ms lower bound           */
#define MSSP_AP_MAX_POLL_MS          60000
#define MSSP_AP_BENCH_MAX_CONNS      100000 /* --connections / park --count    */
#define MSSP_AP_BENCH_MAX_USERS      1000000
#define MSSP_AP_BENCH_MAX_SAMPLES    (1u << 24) /* latencies kept (64 MiB)     */
#define MSSP_AP_BENCH_STATUS_TX      8      /* transactions polled by op=status */
#define MSSP_AP_BENCH_MAX_DURATION_S 86400

/* ---- App messages (mss/appmsg) --------------------------------------- */
#define MSSP_APPMSG_MAX_DEPTH        2      /* the object, plus one level for
                                             * the only arrays ("profiles",
                                             * "chain", strings): deeper input
                                             * is refused unparsed */
#define MSSP_APPMSG_MAX_DTBD         MSSP_MSG_MAX_FIELD /* DTBD bytes: an
                                             * ordinary message field      */

/* ---- Registration jobs and activation on the phone (issue 5: mss/appmsg,
 * pki/e2e, phone/app, cmd/mss-phone) ------------------------------------ */
#define MSSP_APPMSG_MAX_JOB          31     /* job id chars ("J" + 16 hex)     */
#define MSSP_APPMSG_MAX_CSR          MSSP_KEYSTORE_MAX_CERT /* DER bytes of a
                                             * CSR in a job_answer             */
#define MSSP_PHONE_MAX_JOBS          16     /* job answers kept until job_ack  */
#define MSSP_PHONE_RESCAN_MS         2000   /* mss-phone: look for new phone
                                             * directories this often          */
#define MSSP_PHONE_ACTIVATE_MS       30000  /* mss-phone activate: whole run   */

/* ---- Logging (util/log) ------------------------------------------------ */
#define MSSP_LOG_MAX_LINE            1024   /* one log line, newline included  */
#define MSSP_LOG_MAX_VALUE           160    /* bytes of one value (then cut)   */


/* ---- The ME: registration and administration (issue 5) ---------------
 * docs/internals/me.md.  roles/reg (the operations), roles/me (HTTP),
 * roles/mreg (SOAP MSS_Registration), store records, store/audit. */
#define MSSP_STORE_MAX_ID_NUMBER     64     /* serialNumber RDN (national id)  */
#define MSSP_STORE_MAX_LANG          8      /* "fi", "en-GB"                   */
#define MSSP_STORE_MAX_LIST          500    /* rows one list call returns      */
#define MSSP_STORE_MAX_KIND          16     /* record kind chars               */
#define MSSP_STORE_MAX_REC_NAME      1024   /* record name / owner bytes (an
                                             * AP_ID is a name)                */
#define MSSP_STORE_MAX_REC_BODY      (64 * 1024) /* record JSON body bytes     */
#define MSSP_ME_MAX_BODY             (256 * 1024) /* API request body bytes    */
#define MSSP_ME_MAX_RESPONSE         (4 * 1024 * 1024) /* one API answer        */
#define MSSP_ME_APPROVAL_TTL_S       (24 * 3600) /* pending dual-control request */
#define MSSP_ME_JOB_POLL_MS          250    /* ME: answered key jobs -> CA     */
#define MSSP_ME_MAX_STATIC           (1024 * 1024) /* one console file          */
#define MSSP_ME_CSRF_LEN             32     /* CSRF token bytes (hex on wire)  */
#define MSSP_ME_LIST_DEFAULT         50     /* list page when none asked       */
#define MSSP_HOME_JOB_POLL_MS        300    /* HomeMSSP: jobs for devices here */
#define MSSP_HOME_JOB_RESEND_MS      10000  /* re-send a sent job not answered */
#define MSSP_AE_AP_POLL_MS           1000   /* AE: AP table generation check   */
#define MSSP_REG_ACTIVATION_TTL_S    900    /* activation code lifetime        */
#define MSSP_REG_ACTIVATION_MAX_TRIES 5     /* wrong proofs before it locks    */
#define MSSP_REG_ACTIVATION_DIGITS   12     /* digits of an activation code    */
#define MSSP_REG_JOB_TTL_S           600    /* a key/PUK job not done: expired */
#define MSSP_REG_MAX_KEY_GROUPS      5      /* key groups of a registration
                                             * profile (and per request)       */
#define MSSP_REG_MAX_APS             4096   /* APs in the table                */
#define MSSP_REG_MAX_ACCOUNTS        1024
#define MSSP_REG_MAX_PROFILES        1024   /* signature or registration profiles */
#define MSSP_REG_MAX_SCAN_RSA        MSSP_KEYCHECK_MAX_BATCH /* RSA moduli in one
                                             * batch GCD of the key scan       */
#define MSSP_REG_RECENT_TX           20     /* transactions in a user's detail */
#define MSSP_AUDIT_MAX_LINE          8192   /* one audit entry, newline incl.  */
#define MSSP_AUDIT_MAX_DETAIL        2048   /* its detail text                 */
#define MSSP_AUDIT_MAX_FILE          (1LL << 36) /* a log file verify reads    */
#define MSSP_AUDIT_LOCK_MS           5000   /* wait for the file lock (900)    */
#define MSSP_AUDIT_MAX_PROBLEMS      1000   /* problems one verify reports     */
/* store/audit (helper A): */
#define MSSP_AUDIT_MAX_NAME          64     /* actor, role, action bytes       */
#define MSSP_AUDIT_MAX_NODE          64     /* node id bytes                   */
#define MSSP_AUDIT_MAX_HEAD          1024   /* the head file                   */
#define MSSP_AUDIT_LOCK_POLL_MS      1      /* flock retry interval            */
#define MSSP_MREG_MAX_INPUTS         16     /* RegistrationInputs per request  */

/* ---- roles/reg.c (issue 5, helper R1) --------------------------------- */
#define MSSP_REG_MAX_DESCRIPTION     512    /* profile description bytes       */
#define MSSP_REG_MAX_ACCOUNT_NAME    64     /* account name chars [a-z0-9._-]  */
#define MSSP_REG_MAX_TEXT_QUERY      128    /* user.list text search bytes     */
#define MSSP_REG_APPROVAL_ID_BYTES   8      /* "A" + 16 hex                    */
#define MSSP_REG_MAX_COUNT_SCAN      1000000 /* records stats counts at most   */
#define MSSP_REG_METRICS_TIMEOUT_MS  1000   /* stats: fetch of /metrics        */
#define MSSP_REG_METRICS_MAX_BYTES   (256 * 1024) /* /metrics body read         */
#define MSSP_REG_METRICS_MAX_SAMPLES 2048   /* samples put in the stats answer */
/* issue 5 review fixes (helper F2) */
#define MSSP_REG_MIN_ADMINS          2      /* active admins that must remain:
                                             * dual control needs two          */
#define MSSP_REG_APFP_CLAIM_GRACE_MS 60000  /* an AP fingerprint claim whose AP
                                             * does not list it yet counts as
                                             * a write in flight this long,
                                             * then as a crash's leftover      */


/* ---- roles/reg_enrol.c (issue 5: activation, jobs, key scan) ---------- */
#define MSSP_REG_USABLE_CACHE        1024   /* reg_key_usable verdicts kept
                                             * (direct-mapped by key, serial) */
#define MSSP_REG_JOB_CLAIM_MS        60000  /* an ME process's claim on an
                                             * answered job (then another may
                                             * take it over: crash recovery) */
#define MSSP_REG_USER_JOBS           20     /* jobs in a user's detail         */
#define MSSP_REG_CAS_RETRIES         4      /* re-reads of a record changed
                                             * meanwhile before giving up      */
/* helper F1 (review of issue 5): activation attempt limits in the AFE
 * (GCRA: a burst of the count, then one per 60 s / count): per source
 * address on "activate", before any key work (IPv6 peers counted per
 * /64); per MSISDN on a well-formed "activate_proof", before the pool and
 * the store (review 2, F3: a bare "activate" costs nothing, it must not
 * spend a number's budget).  [afe] act_per_ip_per_min and
 * act_per_msisdn_per_min (afe_set_act_limits) override the defaults. */
#define MSSP_AFE_ACT_PER_IP_MIN      10     /* "activate" frames per source
                                             * address per minute             */
#define MSSP_AFE_ACT_PER_MSISDN_MIN  5      /* proofs per MSISDN per minute
                                             * (any source)                   */
#define MSSP_AFE_ACT_LIMIT_MAX       60000  /* a configured limit is cut to
                                             * this (one per millisecond)     */
#define MSSP_AFE_ACT_LIMIT_WINDOW_MS 60000  /* the period of the two counts   */
#define MSSP_AFE_ACT_LIMIT_SLOTS     4096   /* limiter entries (addresses and
                                             * MSISDNs together); full: the
                                             * least recently used is evicted */
#define MSSP_AFE_ACT_LIMIT_KEY       72     /* limiter key bytes ("i:" + an
                                             * address, "m:" + digits)        */

/* ---- HomeMSSP: registration job delivery (issue 5, roles/home) -------- */
#define MSSP_HOME_JOB_BATCH          32     /* jobs one delivery round sends   */
#define MSSP_HOME_DEV_JOBS           8      /* jobs remembered per device so a
                                             * job is not re-sent on the same
                                             * session within
                                             * MSSP_HOME_JOB_RESEND_MS        */


/* ---- roles/me + roles/mreg (helper M, issue 5) ------------------------- */
#define MSSP_ME_PARK_MS              120000 /* one API request on the pool
                                             * (a key scan may take long)     */
#define MSSP_ME_MAX_QUERY_PARAMS     16     /* query-string parameters (400)   */
#define MSSP_MREG_MAX_OPS            64     /* operations in one MReg request
                                             * (one OperationOutput each: what
                                             * a decoder's list cap accepts)   */
/* helper F3 - roles/me admission (review finding 5): the ME shares
 * msspd's pool with signing, so it never holds more than
 * MSSP_ME_MAX_RUNNING of its threads
 * (the default pool has 4: one is always left to signing), and a long
 * operation (key scan, audit verify, stats, a list page beyond the
 * default) runs at most MSSP_ME_MAX_HEAVY at a time. */
#define MSSP_ME_MAX_RUNNING          3      /* ME jobs on the pool at once     */
#define MSSP_ME_MAX_WAITING          64     /* ME requests waiting for a slot
                                             * (then 503 Retry-After)          */
#define MSSP_ME_MAX_HEAVY            2      /* long operations at once (503)   */
#define MSSP_ME_RETRY_AFTER_S        1      /* Retry-After of a 503            */

/* ---- roles/pkipub: OCSP and CRL publication (helper G, issue 5) ------- */
/* The listener is public and unauthenticated, and shares msspd's pool with
 * signing: it never holds more than MSSP_PKIPUB_MAX_RUNNING pool threads
 * (the CA work is serialised on the CA lock anyway). */
#define MSSP_PKIPUB_MAX_RUNNING      1      /* OCSP/CRL jobs on the pool       */
#define MSSP_PKIPUB_MAX_WAITING      64     /* requests waiting for the slot
                                             * (then 503 Retry-After)          */
#define MSSP_PKIPUB_PARK_MS          10000  /* one request, queue included     */
#define MSSP_PKIPUB_RETRY_AFTER_S    1      /* Retry-After of a 503            */
#define MSSP_PKIPUB_MAX_CRL          MSSP_SRV_MAX_RESPONSE /* crl.pem read and
                                             * the DER served (500 beyond)     */

/* ---- roles/roam: the mesh (TS 102 207, issue 6, docs/internals/mesh.md) */
#define MSSP_MESH_MAX_HOPS           8      /* RoamingHeaderEntry elements: a
                                             * longer history is a loop (780) */
#define MSSP_MESH_MAX_PEERS          64     /* peer MSSP records              */
#define MSSP_MESH_MAX_ROUTES         4096   /* routing-table records          */
#define MSSP_MESH_MAX_PREFIX         16     /* '+' and up to 15 digits        */
#define MSSP_MESH_MAX_PROFILE_MAP    32     /* profile conversions per peer   */
#define MSSP_MESH_MAX_PEER_CERTS     4      /* pinned certificates per peer   */
#define MSSP_MESH_HOP_MARGIN_S       5      /* TimeOut shrinks by this at each
                                             * hop, so the upstream answer
                                             * arrives before its own deadline */
#define MSSP_MESH_MIN_TIMEOUT_S      10     /* less budget left: not forwarded
                                             * (208 at once)                  */
#define MSSP_MESH_CONNECT_TIMEOUT_MS 3000   /* a peer that does not accept    */
#define MSSP_MESH_QUERY_TIMEOUT_MS   10000  /* status, receipt, profile, an
                                             * asynchronous forward's 100      */
#define MSSP_MESH_MAX_INFLIGHT       256    /* requests in flight per peer
                                             * (bulkhead: then 780 at once)    */
#define MSSP_MESH_BREAKER_FAILS      5      /* transport failures in a row that
                                             * open a peer's circuit           */
#define MSSP_MESH_BREAKER_OPEN_MS    10000  /* then 780 at once for this long,
                                             * then one trial request          */
#define MSSP_MESH_NOTIFY_PATH        "/soap/services/MSS_NotificationPort"
#define MSSP_MESH_ROUTE_POLL_MS      MSSP_AE_AP_POLL_MS /* table reload check */

/* ---- roles/meshconf: peer and route records (issue 6) */
#define MSSP_MESH_MAX_PATH           4096   /* a peer's ca_file path bytes    */
#define MSSP_MESH_MAX_URL            MSSP_STORE_MAX_URL /* a peer's mesh URL  */
#define MSSP_MESH_MAX_PEER_PROFILES  MSSP_CONF_MAX_LIST /* allow-list URIs    */
#define MSSP_MESH_MAX_RATE           1000000 /* requests/s (as an AP's rate)  */


/* ---- roles/rest: the REST gateway's AP authentication (issue 6,
 * docs/internals/rest.md) */
#define MSSP_REST_SALT_LEN           16     /* random salt of the Basic password */
#define MSSP_REST_HASH_LEN           32     /* SHA-256(salt || password)      */
#define MSSP_REST_MIN_PASSWORD       16     /* rest_password: high entropy, so
                                             * one fast salted hash suffices  */
#define MSSP_REST_MIN_API_KEY        32     /* api_key (HMAC-SHA256 key)      */
#define MSSP_REST_MAX_SECRET         256    /* either secret, and a Basic
                                             * user name + password decoded   */
#define MSSP_REST_MAX_AUTH_HEADER    1024   /* Authorization header read      */
#define MSSP_REST_FAIL_BUCKETS       256    /* failure counters (hash table)  */
#define MSSP_REST_FAIL_MAX_ENTRIES   4096   /* counters kept; the oldest go   */
#define MSSP_REST_FAIL_WINDOW_MS     60000  /* failures counted over this     */
#define MSSP_REST_FAIL_PER_AP_ADDR   10     /* failed attempts per (AP or user
                                             * name, address) and window      */
#define MSSP_REST_FAIL_PER_USER      200    /* failed Basic attempts per user
                                             * name and window, any address   */
#define MSSP_REST_FAIL_PER_ADDR      20     /* failed attempts per client
                                             * address (IPv6: its /64) and
                                             * window: then 429               */
#define MSSP_REST_SCRUB_BATCH        64     /* expired approvals freed of an
                                             * API key per decision (reg.c)   */
#define MSSP_REST_DATE_SKEW_S        300    /* API-key Date: at most this far
                                             * from our clock (and at most
                                             * [ae] instant_skew_s)           */

#endif
