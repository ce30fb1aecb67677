/*
 * api_alerts.c: GET /alerts (docs/alerts.md), and the alert object it
 * shares with the `alert` event of GET /events (api_alert_json()).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api_int.h"

#define ALERTS_LIMIT	100	/* default limit */
#define ALERTS_MAX	1000	/* largest limit */

/* The alert object (see docs/alerts.md); NULL without memory. */
static cJSON *
alert_object(const struct alert_row *r)
{
	cJSON	*o = cJSON_CreateObject(), *mods;
	bool	 ok;
	size_t	 i;

	ok = o != NULL && jnum(o, "id", (double)r->id) &&
	    jstr(o, "run", r->run) && jint_or_null(o, "step", r->step) &&
	    jstr(o, "kind", r->kind) && jstr(o, "severity", r->severity) &&
	    jstr(o, "message", r->message) && jnum(o, "value", r->value) &&
	    jnum(o, "threshold", r->threshold) &&
	    jnum(o, "count", (double)r->count) &&
	    (mods = cJSON_AddArrayToObject(o, "modules")) != NULL;
	for (i = 0; ok && i < r->nmodules; i++)
		ok = jpush(mods, cJSON_CreateString(r->modules[i]));
	ok = ok && jnum(o, "time", r->time);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* The alert object as JSON text (see api.h). */
char *
api_alert_json(const struct alert_row *r)
{
	cJSON	*o = alert_object(r);
	char	*s = o != NULL ? cJSON_PrintUnformatted(o) : NULL;

	cJSON_Delete(o);
	return s;
}

/* Appends one alert (store_alerts callback); nonzero without memory. */
static int
alerts_cb(void *arg, const struct alert_row *r)
{
	return !jpush(arg, alert_object(r));
}

/* GET /alerts?run&since&limit: the newest alerts first. */
enum spd_err
api_alerts(struct ctx *c)
{
	struct run_ref		 run = { 0, NULL };
	unsigned long long	 since, limit;
	cJSON			*root, *arr;
	enum spd_err		 rc;

	if ((rc = arg_num(c, "since", 0, (unsigned long long)INT64_MAX, 0,
	    &since)) != SPD_OK || (rc = arg_num(c, "limit", 1, ALERTS_MAX,
	    ALERTS_LIMIT, &limit)) != SPD_OK)
		return rc;
	/* Unlike other routes, no run means every run. */
	if (arg(c, "run") != NULL && (rc = resolve_run(c, &run)) != SPD_OK)
		return rc;
	free(run.name);
	if ((root = cJSON_CreateObject()) == NULL ||
	    (arr = cJSON_AddArrayToObject(root, "alerts")) == NULL) {
		cJSON_Delete(root);
		return SPD_ENOMEM;
	}
	rc = store_alerts(c->st, run.id, (int64_t)since, (size_t)limit,
	    alerts_cb, arr, c->eb);
	if (rc != SPD_OK) {
		cJSON_Delete(root);
		return rc == SPD_ECANCELED ? SPD_ENOMEM : rc;
	}
	return reply_json(c->resp, 200, root);
}
