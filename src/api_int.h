/*
 * api_int.h: what the files of the API share (private to src/api*.c).
 * api.c holds the route table and the dispatcher; each route family has
 * its own file (api_status.c, api_runs.c, api_history.c, api_selection.c,
 * api_metrics.c, api_alerts.c, api_static.c); api_util.c holds the answers, JSON helpers,
 * argument parsing and the per-thread store handle they all use.
 *
 * Conventions of the JSON written by the API:
 * - Strict JSON. A non-finite number is null with a sibling
 *   "<field>_class": "inf", "-inf" or "nan" (jnum()). In arrays of numbers
 *   (history points, spectrum values) the value is null and a parallel
 *   array ("classes" in a history series, "values_class" in a spectrum)
 *   gives the class of each entry (null for finite ones); that array is
 *   present only when some entry is not finite.
 * - Errors: {"error":{"code":"…","message":"…"}} with the HTTP status.
 *
 * cJSON appears here only as "struct cJSON": its header stays in the .c
 * files listed in tests/check-layers.sh.
 */
#ifndef SPECTRUMD_API_INT_H
#define SPECTRUMD_API_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spectrumd/api.h"
#include "spectrumd/store.h"

#define API_MAX_FILES		256		/* static files served */
#define API_MAX_FILE		(16u << 20)	/* bytes of one static file */
#define API_MAX_WAIT		300		/* seconds of a long poll */
#define API_MAX_POINTS		100000		/* max_points upper bound */
#define API_MAX_HIST		2000000		/* history points collected */

extern const char CT_JSON[];
extern const char CT_HTML[];
extern const char CT_TEXT[];
extern const char CT_CSV[];
extern const char CT_PROM[];
extern const char CT_SSE[];
extern const char CC_NOSTORE[];
extern const char CC_NOCACHE[];

struct cJSON;

/* A whitelisted static file, read at startup. */
struct sfile {
	char		*url;		/* "/index.html", "/assets/app.js" */
	const char	*ctype;
	char		*data;
	size_t		 len;
	char		 etag[24];
};

struct api {
	const struct api_config	*cfg;
	struct sfile		*files;
	size_t			 nfiles;
	const struct sfile	*index;		/* served at "/", or NULL */
	pthread_key_t		 key;		/* the thread's struct store */
	pthread_key_t		 memo_key;	/* its rendered selections */
};

/* One request being handled. */
struct ctx {
	struct api		*a;
	const struct api_config	*cfg;
	const struct api_req	*req;
	struct api_resp		*resp;
	struct store		*st;		/* NULL until opened */
	struct spd_errbuf	*eb;
};

/* A resolved run: its id and a copy of its name. */
struct run_ref {
	int64_t	 id;
	char	*name;
};

/* A copy of the checkpoint fields handlers keep past a callback. */
struct ckpt_copy {
	int64_t		 id;
	long long	 step;
	enum ckpt_status status;
	char		*path;
	char		*backend;
};

/* api_util.c: JSON values (see the conventions above). */
const char	*num_class(double);
bool		 jnum(struct cJSON *, const char *, double);
struct cJSON	*jnum_item(double);
bool		 jpush(struct cJSON *, struct cJSON *);
bool		 jstr(struct cJSON *, const char *, const char *);
bool		 jint_or_null(struct cJSON *, const char *, long long);
bool		 jtime(struct cJSON *, const char *, double);

/* api_util.c: answers. */
void		 reply_static(struct api_resp *, int, const char *,
		    const char *, size_t);
void		 reply_owned(struct api_resp *, int, const char *, char *,
		    size_t);
enum spd_err	 reply_json(struct api_resp *, int, struct cJSON *);
enum spd_err	 reply_error(struct ctx *, int, const char *, const char *,
		    ...) __attribute__((format(printf, 4, 5)));
void		 reply_rc(struct api_resp *, enum spd_err,
		    const struct spd_errbuf *);
bool		 etag_match(const char *, const char *);

/* api_util.c: requests. */
const char	*arg(const struct ctx *, const char *);
bool		 parse_dec(const char *, unsigned long long,
		    unsigned long long, unsigned long long *);
enum spd_err	 arg_num(struct ctx *, const char *, unsigned long long,
		    unsigned long long, unsigned long long,
		    unsigned long long *);
enum spd_err	 arg_step(struct ctx *, long long *);
bool		 arg_enum(struct ctx *, const char *, const char *const *,
		    size_t *);
void		 close_thread_store(void *);
enum spd_err	 thread_store(struct ctx *);
void		 reply_store_down(struct ctx *, enum spd_err);
enum spd_err	 resolve_run(struct ctx *, struct run_ref *);
void		 ckpt_copy_cleanup(struct ckpt_copy *);
enum spd_err	 find_ckpt(struct ctx *, const struct run_ref *, long long,
		    struct ckpt_copy *);
bool		 grow(void **, size_t *, size_t, size_t);

/* The route handlers, by file. */
enum spd_err	 api_health(struct ctx *);		/* api_status.c */
enum spd_err	 api_ready(struct ctx *);
enum spd_err	 api_events(struct ctx *);
enum spd_err	 api_rescan(struct ctx *);
enum spd_err	 api_runs(struct ctx *);		/* api_runs.c */
enum spd_err	 api_checkpoints(struct ctx *);
enum spd_err	 api_snr(struct ctx *);
enum spd_err	 api_spectrum(struct ctx *);
enum spd_err	 api_snr_results(struct ctx *);
enum spd_err	 api_history(struct ctx *);		/* api_history.c */
enum spd_err	 api_train_log(struct ctx *);		/* api_history.c */
enum spd_err	 api_selection(struct ctx *);		/* api_selection.c */
void		 free_selection_memo(void *);
enum spd_err	 api_selection_diff(struct ctx *);
enum spd_err	 api_selection_history(struct ctx *);
enum spd_err	 api_lr_scales(struct ctx *);
enum spd_err	 api_metrics(struct ctx *);		/* api_metrics.c */
enum spd_err	 api_alerts(struct ctx *);		/* api_alerts.c */

/* api_static.c: the dashboard's files. */
enum spd_err	 load_web(struct api *, const char *, struct spd_errbuf *);
const struct sfile *find_file(const struct api *, const char *);
void		 reply_file(struct ctx *, const struct sfile *);

#endif /* SPECTRUMD_API_INT_H */
