/*
 * store.c: the history in SQLite (DESIGN.md §4), the only file that
 * includes <sqlite3.h>. The schema is a list of forward migrations keyed by
 * PRAGMA user_version; every statement is a string in one static table.
 *
 * Non-finite values: SQLite keeps ±inf as REAL but turns NaN into NULL, so
 * a NULL metric reads back as NaN, and the SNR also carries an explicit
 * snr_class ('inf', '-inf', 'nan') for readers of the raw tables. The
 * heavy-tail metrics have their status instead: alpha_status NULL means
 * not computed (see migration 5). Spectra are little-endian float32 BLOBs
 * of k * 4 bytes.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "spectrumd/heavytail.h"
#include "spectrumd/store.h"

#define STORE_APP_ID	0x53504431	/* PRAGMA application_id, "SPD1" */
#define STORE_BUSY_MS	5000

#define STORE_NCACHE	64	/* ≥ Q_COUNT, checked below */

struct store {
	sqlite3		*db;
	enum store_mode	 mode;
	enum store_fault fault;		/* of the last operation */
	char		*path;		/* RW: checked before each write */
	char		*copy_sql;	/* copies a reused metrics row */
	dev_t		 dev;		/* of path when opened (RW) */
	ino_t		 ino;
	bool		 have_id;
	/* Prepared statements of the sql[] table, kept for reuse: parsing
	 * was most of the cost of a small HTTP read. */
	sqlite3_stmt	*cache[STORE_NCACHE];
};

/* --- schema ------------------------------------------------------------ */

/* The status lists of schema 1 (frozen) and of the current schema. */
#define CK_STATUSES_V1 \
	"('pending', 'analyzing', 'done', 'failed', 'unsupported', 'vanished')"
#define CK_STATUSES \
	"('pending', 'analyzing', 'done', 'failed', 'unsupported', 'vanished'," \
	" 'incomplete')"

/* migrations[v] takes the schema from user_version v to v + 1. */
static const char *const migrations[] = {
	/* 0 → 1: everything. */
	"CREATE TABLE runs ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  dir TEXT NOT NULL,"
	"  created REAL NOT NULL);"
	"CREATE TABLE checkpoints ("
	"  id INTEGER PRIMARY KEY,"
	"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  step INTEGER NOT NULL,"
	"  path TEXT NOT NULL,"
	"  status TEXT NOT NULL CHECK (status IN " CK_STATUSES_V1 "),"
	"  error TEXT,"
	"  done INTEGER NOT NULL DEFAULT 0,"
	"  total INTEGER NOT NULL DEFAULT 0,"
	"  wall_time REAL NOT NULL DEFAULT 0,"
	"  started REAL NOT NULL DEFAULT 0,"
	"  finished REAL NOT NULL DEFAULT 0,"
	"  seconds REAL NOT NULL DEFAULT 0,"
	"  bytes INTEGER NOT NULL DEFAULT 0,"
	"  backend TEXT,"
	"  UNIQUE (run_id, path));"
	"CREATE INDEX checkpoints_step ON checkpoints (run_id, step);"
	"CREATE TABLE matrices ("
	"  id INTEGER PRIMARY KEY,"
	"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  module TEXT NOT NULL,"
	"  type TEXT NOT NULL,"
	"  layer INTEGER NOT NULL,"
	"  embedding INTEGER NOT NULL DEFAULT 0,"
	"  rows INTEGER NOT NULL,"
	"  cols INTEGER NOT NULL,"
	"  dtype TEXT NOT NULL,"
	"  UNIQUE (run_id, name));"
	"CREATE INDEX matrices_module ON matrices (run_id, module);"
	"CREATE TABLE metrics ("
	"  checkpoint_id INTEGER NOT NULL"
	"    REFERENCES checkpoints(id) ON DELETE CASCADE,"
	"  matrix_id INTEGER NOT NULL REFERENCES matrices(id) ON DELETE CASCADE,"
	"  ord INTEGER NOT NULL,"
	"  status TEXT NOT NULL,"
	"  error TEXT,"
	"  snr REAL,"
	"  snr_class TEXT CHECK (snr_class IN ('inf', '-inf', 'nan')),"
	"  s1 REAL, sigma_hat REAL, tau REAL, mp_rank INTEGER,"
	"  signal REAL, noise REAL, fro2 REAL, stable_rank REAL,"
	"  seconds REAL,"
	"  PRIMARY KEY (checkpoint_id, matrix_id),"
	"  UNIQUE (checkpoint_id, ord)) WITHOUT ROWID;"
	"CREATE INDEX metrics_matrix ON metrics (matrix_id);"
	"CREATE TABLE spectra ("
	"  checkpoint_id INTEGER NOT NULL"
	"    REFERENCES checkpoints(id) ON DELETE CASCADE,"
	"  matrix_id INTEGER NOT NULL REFERENCES matrices(id) ON DELETE CASCADE,"
	"  k INTEGER NOT NULL CHECK (k > 0),"
	"  sv BLOB NOT NULL CHECK (length(sv) = 4 * k),"
	"  PRIMARY KEY (checkpoint_id, matrix_id));"
	"CREATE INDEX spectra_matrix ON spectra (matrix_id);"
	"CREATE TABLE selections ("
	"  id INTEGER PRIMARY KEY,"
	"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  checkpoint_id INTEGER NOT NULL"
	"    REFERENCES checkpoints(id) ON DELETE CASCADE,"
	"  top_percent INTEGER NOT NULL CHECK (top_percent BETWEEN 1 AND 100),"
	"  version INTEGER NOT NULL CHECK (version >= 1),"
	"  modules TEXT NOT NULL,"
	"  body TEXT NOT NULL,"
	"  created REAL NOT NULL,"
	"  UNIQUE (run_id, checkpoint_id, top_percent));"
	"CREATE INDEX selections_latest ON selections (run_id, top_percent, id);"
	"CREATE INDEX selections_ckpt ON selections (checkpoint_id);",
	/*
	 * 1 → 2: status 'incomplete' and when a checkpoint was first seen
	 * so. SQLite cannot change a CHECK in place: the table is rebuilt
	 * (SQLite's "12-step" procedure; migrate() turns foreign keys off).
	 */
	"CREATE TABLE checkpoints_v2 ("
	"  id INTEGER PRIMARY KEY,"
	"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  step INTEGER NOT NULL,"
	"  path TEXT NOT NULL,"
	"  status TEXT NOT NULL CHECK (status IN " CK_STATUSES "),"
	"  error TEXT,"
	"  done INTEGER NOT NULL DEFAULT 0,"
	"  total INTEGER NOT NULL DEFAULT 0,"
	"  wall_time REAL NOT NULL DEFAULT 0,"
	"  started REAL NOT NULL DEFAULT 0,"
	"  finished REAL NOT NULL DEFAULT 0,"
	"  seconds REAL NOT NULL DEFAULT 0,"
	"  bytes INTEGER NOT NULL DEFAULT 0,"
	"  backend TEXT,"
	"  incomplete_since REAL NOT NULL DEFAULT 0,"
	"  UNIQUE (run_id, path));"
	"INSERT INTO checkpoints_v2 (id, run_id, step, path, status, error,"
	"  done, total, wall_time, started, finished, seconds, bytes, backend)"
	"  SELECT id, run_id, step, path, status, error, done, total,"
	"  wall_time, started, finished, seconds, bytes, backend"
	"  FROM checkpoints;"
	"DROP TABLE checkpoints;"
	"ALTER TABLE checkpoints_v2 RENAME TO checkpoints;"
	"CREATE INDEX checkpoints_step ON checkpoints (run_id, step);",
	/*
	 * 2 → 3: the selection as facts, not renderings. A selection is
	 * keyed by top_percent and whether embeddings are listed apart; its
	 * members are rows: the embeddings (type NULL), then each type in
	 * first-seen order with its selected modules by rank (a type with
	 * none selected is one row with module NULL). The old rows held JSON
	 * bodies only: they go, and store_selection_sync() rebuilds the
	 * served selection from the stored metrics at start-up. Versions go
	 * on from the highest given before (selection_base), so no client
	 * holding an old ETag can mistake a rebuilt selection for its own.
	 */
	"CREATE TABLE selection_base ("
	"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  top_percent INTEGER NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  PRIMARY KEY (run_id, top_percent));"
	"INSERT INTO selection_base SELECT run_id, top_percent, max(version)"
	"  FROM selections GROUP BY run_id, top_percent;"
	"DROP TABLE selections;"
	"CREATE TABLE selections ("
	"  id INTEGER PRIMARY KEY,"
	"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  checkpoint_id INTEGER NOT NULL"
	"    REFERENCES checkpoints(id) ON DELETE CASCADE,"
	"  top_percent INTEGER NOT NULL CHECK (top_percent BETWEEN 1 AND 100),"
	"  embeddings INTEGER NOT NULL CHECK (embeddings IN (0, 1)),"
	"  version INTEGER NOT NULL CHECK (version >= 1),"
	"  modules TEXT NOT NULL,"
	"  created REAL NOT NULL,"
	"  UNIQUE (run_id, checkpoint_id, top_percent, embeddings));"
	"CREATE INDEX selections_latest ON selections"
	"  (run_id, top_percent, embeddings, id);"
	"CREATE INDEX selections_ckpt ON selections (checkpoint_id);"
	"CREATE TABLE selection_members ("
	"  selection_id INTEGER NOT NULL"
	"    REFERENCES selections(id) ON DELETE CASCADE,"
	"  ord INTEGER NOT NULL,"
	"  type TEXT,"
	"  type_n INTEGER NOT NULL DEFAULT 0,"
	"  rank INTEGER NOT NULL DEFAULT 0,"
	"  module TEXT,"
	"  CHECK (type IS NOT NULL OR module IS NOT NULL),"
	"  PRIMARY KEY (selection_id, ord)) WITHOUT ROWID;",
	/*
	 * 3 → 4: content fingerprints and reuse (issue 12). A metrics row
	 * gets the XXH3-128 of its matrix and the method (svd_method()) that
	 * computed it; a reused row the run and step where it was computed.
	 * Older rows keep NULLs: valid, never reused. A checkpoint counts
	 * its reused matrices.
	 */
	"ALTER TABLE metrics ADD COLUMN fingerprint BLOB;"
	"ALTER TABLE metrics ADD COLUMN method TEXT;"
	"ALTER TABLE metrics ADD COLUMN reused_run INTEGER;"
	"ALTER TABLE metrics ADD COLUMN reused_step INTEGER;"
	"ALTER TABLE checkpoints ADD COLUMN reused INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX metrics_fingerprint ON metrics (fingerprint, method)"
	"  WHERE fingerprint IS NOT NULL;",
	/*
	 * 4 → 5: the heavy-tail metrics of each matrix (issue 15,
	 * docs/heavytail.md): alpha, alpha_weighted, ks, log_spectral_norm
	 * and the fit's xmin and n_tail, with alpha_status, the
	 * heavytail_status_name() of the fit ('ok', 'too_few', …). NULL in
	 * alpha_status: not computed (a matrix not analysed, or a row from
	 * before this schema); with a status, a NULL metric is a NaN (no
	 * fit). A reuse of an older row fits its stored spectrum.
	 */
	"ALTER TABLE metrics ADD COLUMN alpha REAL;"
	"ALTER TABLE metrics ADD COLUMN alpha_weighted REAL;"
	"ALTER TABLE metrics ADD COLUMN ks REAL;"
	"ALTER TABLE metrics ADD COLUMN log_spectral_norm REAL;"
	"ALTER TABLE metrics ADD COLUMN xmin REAL;"
	"ALTER TABLE metrics ADD COLUMN n_tail INTEGER;"
	"ALTER TABLE metrics ADD COLUMN alpha_status TEXT;",
	/*
	 * 5 → 6: the training log of each run (issue 15): every number of
	 * trainer_state.json log_history (loss, learning_rate, grad_norm,
	 * epoch, eval_* ...) at its step, and the step of the checkpoint
	 * whose log gave it (source). A resumed run's history overlaps the
	 * earlier one: the value of the latest checkpoint wins, whatever the
	 * order of analysis.
	 */
	"CREATE TABLE train_log ("
	"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  step INTEGER NOT NULL,"
	"  name TEXT NOT NULL,"
	"  value REAL NOT NULL,"
	"  source INTEGER NOT NULL,"
	"  PRIMARY KEY (run_id, step, name)) WITHOUT ROWID;",
	/*
	 * 6 → 7: alerts (issue 15, docs/alerts.md), kept across restarts.
	 * One alert per (run, step, kind) where it has a step: a checkpoint
	 * analysed again, or a stall seen again after a restart, adds none.
	 * value and threshold NULL read as NaN; the modules an alert names
	 * are child rows in order.
	 */
	"CREATE TABLE alerts ("
	"  id INTEGER PRIMARY KEY,"
	"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  step INTEGER,"
	"  kind TEXT NOT NULL,"
	"  severity TEXT NOT NULL CHECK (severity IN ('warning', 'critical')),"
	"  message TEXT NOT NULL,"
	"  value REAL,"
	"  threshold REAL,"
	"  count INTEGER NOT NULL DEFAULT 0,"
	"  created REAL NOT NULL);"
	"CREATE UNIQUE INDEX alerts_key ON alerts (run_id, step, kind)"
	"  WHERE step IS NOT NULL;"
	"CREATE INDEX alerts_run ON alerts (run_id, id);"
	"CREATE TABLE alert_modules ("
	"  alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,"
	"  ord INTEGER NOT NULL,"
	"  module TEXT NOT NULL,"
	"  PRIMARY KEY (alert_id, ord)) WITHOUT ROWID;",
};

_Static_assert(nitems(migrations) == STORE_SCHEMA_VERSION,
    "one migration per schema version");

/* --- statements ---------------------------------------------------------- */

enum q {
	Q_BEGIN, Q_COMMIT, Q_ROLLBACK, Q_USER_VERSION, Q_APP_ID, Q_NTABLES,
	Q_RUN_UPSERT, Q_CKPT_INSERT, Q_CKPT_FIND, Q_CKPT_STATUS,
	Q_CKPT_PROGRESS, Q_CKPT_RESET, Q_CKPT_INCOMPLETE, Q_CKPT_RESUME,
	Q_CKPT_DROP,
	Q_PUT_RUN, Q_PUT_DEL_METRICS, Q_PUT_DEL_SPECTRA, Q_PUT_MATRIX,
	Q_PUT_METRIC, Q_PUT_HT, Q_PUT_SPECTRUM, Q_PUT_DONE, Q_SEL_PREV,
	Q_SEL_BASE,
	Q_SEL_DEL,
	Q_SEL_PUT, Q_SEL_MEMBER, Q_SEL_MEMBERS, Q_SEL_MISSING,
	Q_RUNS, Q_RUN_COUNTS, Q_RUN_FIND, Q_CKPTS, Q_CKPT_LATEST, Q_CKPT_STEP,
	Q_CKPT_ONE, Q_METRICS, Q_SPECTRUM, Q_SEL_LATEST, Q_REUSE_FIND,
	Q_METRIC_COLS, Q_SEL_BEFORE, Q_SEL_LAST2, Q_TRAIN_PUT, Q_TRAIN_GET,
	Q_TRAIN_NAMES, Q_ALERT_PUT, Q_ALERT_MODULE, Q_ALERTS, Q_ALERT_MODULES,
	Q_ALERT_COUNTS, Q_ARRIVALS, Q_RUN_STALLED, Q_SEL_STEPS, Q_SEL_AT,
	Q_COUNT
};

#define CKPT_COLS \
	"id, run_id, step, path, status, error, done, total, wall_time," \
	" started, finished, seconds, bytes, backend, incomplete_since," \
	" (SELECT count(*) FROM metrics n" \
	" WHERE n.checkpoint_id = checkpoints.id AND (n.status = 'nonfinite'" \
	" OR (n.status = 'ok' AND n.snr_class = 'nan'))), reused"
/*
 * The highest selection version given for run ?1 at top_percent ?2 with
 * embeddings ?3, or before schema 3 (selection_base); NULL when none.
 */
#define SEL_MAX \
	"SELECT max(v) FROM (SELECT max(version) AS v FROM selections" \
	" WHERE run_id = ?1 AND top_percent = ?2 AND embeddings = ?3" \
	" UNION ALL SELECT version FROM selection_base" \
	" WHERE run_id = ?1 AND top_percent = ?2)"

/*
 * The checkpoints that arrived whole (every status but incomplete, and
 * not failed for staying incomplete): the stall rule's times.
 */
#define ARRIVED "status != 'incomplete' AND incomplete_since = 0"

/* The SNR columns in struct snr_result order, read by metric_fill(). */
#define SNR_COLS \
	"m.snr, m.snr_class, m.s1, m.sigma_hat, m.tau, m.mp_rank, m.signal," \
	" m.noise, m.fro2, m.stable_rank"

/* The heavy-tail columns, read by ht_fill(). */
#define HT_COLS \
	"m.alpha, m.alpha_weighted, m.ks, m.log_spectral_norm, m.xmin," \
	" m.n_tail, m.alpha_status"

static const char *const sql[Q_COUNT] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_USER_VERSION] = "PRAGMA user_version",
	[Q_APP_ID] = "PRAGMA application_id",
	[Q_NTABLES] = "SELECT count(*) FROM sqlite_master",
	[Q_RUN_UPSERT] = "INSERT INTO runs (name, dir, created)"
	    " VALUES (?1, ?2, ?3)"
	    " ON CONFLICT (name) DO UPDATE SET dir = excluded.dir"
	    " RETURNING id",
	[Q_CKPT_INSERT] = "INSERT INTO checkpoints"
	    " (run_id, path, step, wall_time, status)"
	    " VALUES (?1, ?2, ?3, ?4, ?5)"
	    " ON CONFLICT (run_id, path) DO NOTHING",
	[Q_CKPT_FIND] = "SELECT id, status FROM checkpoints"
	    " WHERE run_id = ?1 AND path = ?2",
	[Q_CKPT_STATUS] = "UPDATE checkpoints SET status = ?2, error = ?3,"
	    " started = CASE WHEN ?2 = 'analyzing' THEN ?4 ELSE started END,"
	    " finished = CASE WHEN ?2 = 'analyzing' THEN 0"
	    "   WHEN ?2 = 'pending' THEN finished ELSE ?4 END,"
	    " done = CASE WHEN ?2 = 'analyzing' THEN 0 ELSE done END,"
	    " total = CASE WHEN ?2 = 'analyzing' THEN 0 ELSE total END"
	    " WHERE id = ?1",
	[Q_CKPT_PROGRESS] = "UPDATE checkpoints SET done = ?2, total = ?3"
	    " WHERE id = ?1",
	[Q_CKPT_RESET] = "UPDATE checkpoints SET status = 'pending'"
	    " WHERE status = 'analyzing'",
	[Q_CKPT_INCOMPLETE] = "UPDATE checkpoints SET status = 'incomplete',"
	    " error = ?2, incomplete_since = CASE WHEN incomplete_since = 0"
	    " THEN ?3 ELSE incomplete_since END WHERE id = ?1"
	    " RETURNING incomplete_since",
	[Q_CKPT_RESUME] = "UPDATE checkpoints SET status = 'pending',"
	    " error = NULL, incomplete_since = 0 WHERE id = ?1 AND"
	    " (status = 'incomplete' OR"
	    " (status = 'failed' AND incomplete_since > 0))",
	[Q_CKPT_DROP] = "DELETE FROM checkpoints WHERE run_id = ?1"
	    " AND path = ?2 AND (status = 'incomplete' OR"
	    " (status = 'failed' AND incomplete_since > 0))",
	[Q_PUT_RUN] = "SELECT run_id FROM checkpoints WHERE id = ?1",
	[Q_PUT_DEL_METRICS] = "DELETE FROM metrics WHERE checkpoint_id = ?1",
	[Q_PUT_DEL_SPECTRA] = "DELETE FROM spectra WHERE checkpoint_id = ?1",
	[Q_PUT_MATRIX] = "INSERT INTO matrices"
	    " (run_id, name, module, type, layer, embedding, rows, cols, dtype)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
	    " ON CONFLICT (run_id, name) DO UPDATE SET"
	    " module = excluded.module, type = excluded.type,"
	    " layer = excluded.layer, embedding = excluded.embedding,"
	    " rows = excluded.rows, cols = excluded.cols, dtype = excluded.dtype"
	    " RETURNING id",
	[Q_PUT_METRIC] = "INSERT INTO metrics (checkpoint_id, matrix_id, ord,"
	    " status, error, snr, snr_class, s1, sigma_hat, tau, mp_rank,"
	    " signal, noise, fro2, stable_rank, seconds, fingerprint, method,"
	    " reused_run, reused_step, alpha, alpha_weighted, ks,"
	    " log_spectral_norm, xmin, n_tail, alpha_status)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
	    " ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26,"
	    " ?27)",
	/* A reused row copied from one stored before schema 5. */
	[Q_PUT_HT] = "UPDATE metrics SET alpha = ?3, alpha_weighted = ?4,"
	    " ks = ?5, log_spectral_norm = ?6, xmin = ?7, n_tail = ?8,"
	    " alpha_status = ?9 WHERE checkpoint_id = ?1 AND matrix_id = ?2"
	    " AND alpha_status IS NULL",
	[Q_PUT_SPECTRUM] = "INSERT INTO spectra (checkpoint_id, matrix_id, k, sv)"
	    " VALUES (?1, ?2, ?3, ?4)",
	[Q_PUT_DONE] = "UPDATE checkpoints SET status = 'done', error = NULL,"
	    " backend = ?2, seconds = ?3, bytes = ?4, finished = ?5,"
	    " started = CASE WHEN started = 0 THEN ?5 - ?3 ELSE started END,"
	    " done = ?6, total = ?6, reused = ?7 WHERE id = ?1",
	[Q_SEL_PREV] = "SELECT s.version, s.modules, (" SEL_MAX "),"
	    " c.step, (SELECT step FROM checkpoints WHERE id = ?4)"
	    " FROM selections s JOIN checkpoints c ON c.id = s.checkpoint_id"
	    " WHERE s.run_id = ?1 AND s.top_percent = ?2 AND s.embeddings = ?3"
	    " ORDER BY c.step DESC, s.id DESC LIMIT 1",
	[Q_SEL_BASE] = "SELECT coalesce((" SEL_MAX "), 0)",
	[Q_SEL_DEL] = "DELETE FROM selections WHERE checkpoint_id = ?1"
	    " AND top_percent = ?2 AND embeddings = ?3",
	[Q_SEL_PUT] = "INSERT INTO selections (run_id, checkpoint_id,"
	    " top_percent, embeddings, version, modules, created)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[Q_SEL_MEMBER] = "INSERT INTO selection_members (selection_id, ord,"
	    " type, type_n, rank, module) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[Q_SEL_MEMBERS] = "SELECT type, type_n, module FROM selection_members"
	    " WHERE selection_id = ?1 ORDER BY ord",
	[Q_SEL_MISSING] = "SELECT c.id FROM checkpoints c"
	    " WHERE c.status = 'done' AND NOT EXISTS (SELECT 1 FROM selections s"
	    " WHERE s.checkpoint_id = c.id AND s.top_percent = ?1"
	    " AND s.embeddings = ?2) ORDER BY c.run_id, c.step, c.id",
	[Q_RUNS] = "SELECT r.id, r.name, r.dir, coalesce((SELECT max(c.step)"
	    " FROM checkpoints c WHERE c.run_id = r.id AND c.status = 'done'),"
	    " -1) FROM runs r ORDER BY r.name",
	[Q_RUN_COUNTS] = "SELECT status, count(*) FROM checkpoints"
	    " WHERE run_id = ?1 GROUP BY status",
	[Q_RUN_FIND] = "SELECT id FROM runs WHERE name = ?1",
	[Q_CKPTS] = "SELECT " CKPT_COLS " FROM checkpoints WHERE run_id = ?1"
	    " ORDER BY step, path",
	[Q_CKPT_LATEST] = "SELECT " CKPT_COLS " FROM checkpoints"
	    " WHERE run_id = ?1 AND status = 'done'"
	    " ORDER BY step DESC, id DESC LIMIT 1",
	[Q_CKPT_STEP] = "SELECT " CKPT_COLS " FROM checkpoints"
	    " WHERE run_id = ?1 AND step = ?2"
	    " ORDER BY status = 'done' DESC, id DESC LIMIT 1",
	[Q_CKPT_ONE] = "SELECT path, status, backend, bytes, seconds"
	    " FROM checkpoints WHERE id = ?1",
	[Q_METRICS] = "SELECT x.name, x.module, x.type, x.dtype, x.layer,"
	    " x.rows, x.cols, m.status, m.error, m.seconds, x.embedding, "
	    SNR_COLS ", " HT_COLS
	    " FROM metrics m JOIN matrices x ON x.id = m.matrix_id"
	    " WHERE m.checkpoint_id = ?1 ORDER BY m.ord",
	[Q_SPECTRUM] = "SELECT s.k, s.sv, " SNR_COLS " FROM matrices x"
	    " JOIN spectra s ON s.matrix_id = x.id AND s.checkpoint_id = ?1"
	    " JOIN metrics m ON m.matrix_id = x.id AND m.checkpoint_id = ?1"
	    " WHERE x.run_id = (SELECT run_id FROM checkpoints WHERE id = ?1)"
	    " AND (x.name = ?2 OR x.module = ?2)"
	    " ORDER BY x.name = ?2 DESC LIMIT 1",
	/* The selection of checkpoint ?1's run at the step before it. */
	[Q_SEL_BEFORE] = "SELECT s.id FROM selections s"
	    " JOIN checkpoints c ON c.id = s.checkpoint_id"
	    " JOIN checkpoints k ON k.id = ?1"
	    " WHERE s.run_id = k.run_id AND s.top_percent = ?2"
	    " AND s.embeddings = ?3 AND c.step < k.step"
	    " ORDER BY c.step DESC, s.id DESC LIMIT 1",
	/* The two selections of the run's highest steps. */
	[Q_SEL_LAST2] = "SELECT s.id FROM selections s"
	    " JOIN checkpoints c ON c.id = s.checkpoint_id"
	    " WHERE s.run_id = ?1 AND s.top_percent = ?2 AND s.embeddings = ?3"
	    " ORDER BY c.step DESC, s.id DESC LIMIT 2",
	[Q_SEL_LATEST] = "SELECT s.id, s.version, c.step, c.path, s.created"
	    " FROM selections s JOIN checkpoints c ON c.id = s.checkpoint_id"
	    " WHERE s.run_id = ?1 AND s.top_percent = ?2 AND s.embeddings = ?3"
	    " ORDER BY c.step DESC, s.id DESC LIMIT 1",
	/*
	 * A stored result to reuse: with a spectrum first, then with the
	 * heavy-tail metrics; the origin. One from before them (schema < 5)
	 * only with its spectrum, to fit.
	 */
	[Q_REUSE_FIND] = "SELECT s.k, s.sv, m.checkpoint_id, m.matrix_id,"
	    " coalesce(m.reused_run, c.run_id), coalesce(m.reused_step, c.step),"
	    " " SNR_COLS ", " HT_COLS " FROM metrics m"
	    " JOIN checkpoints c ON c.id = m.checkpoint_id"
	    " LEFT JOIN spectra s ON s.checkpoint_id = m.checkpoint_id"
	    " AND s.matrix_id = m.matrix_id"
	    " WHERE m.fingerprint = ?1 AND m.method = ?2 AND m.status = 'ok'"
	    " AND m.checkpoint_id != ?3 AND (?4 = 0 OR s.k IS NOT NULL)"
	    " AND (m.alpha_status IS NOT NULL OR s.k IS NOT NULL)"
	    " ORDER BY s.k IS NULL, m.alpha_status IS NULL,"
	    " m.checkpoint_id DESC LIMIT 1",
	[Q_METRIC_COLS] = "SELECT name FROM pragma_table_info('metrics')"
	    " ORDER BY cid",
	[Q_TRAIN_PUT] = "INSERT INTO train_log"
	    " (run_id, step, name, value, source) VALUES (?1, ?2, ?3, ?4, ?5)"
	    " ON CONFLICT (run_id, step, name) DO UPDATE SET"
	    " value = excluded.value, source = excluded.source"
	    " WHERE excluded.source >= train_log.source",
	[Q_TRAIN_GET] = "SELECT step, value FROM train_log"
	    " WHERE run_id = ?1 AND name = ?2 ORDER BY step",
	[Q_TRAIN_NAMES] = "SELECT name, count(*), min(step), max(step)"
	    " FROM train_log WHERE run_id = ?1 GROUP BY name ORDER BY name",
	[Q_ALERT_PUT] = "INSERT INTO alerts (run_id, step, kind, severity,"
	    " message, value, threshold, count, created)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
	    " ON CONFLICT DO NOTHING RETURNING id",
	[Q_ALERT_MODULE] = "INSERT INTO alert_modules (alert_id, ord, module)"
	    " VALUES (?1, ?2, ?3)",
	[Q_ALERTS] = "SELECT a.id, r.name, a.step, a.kind, a.severity,"
	    " a.message, a.value, a.threshold, a.count, a.created"
	    " FROM alerts a JOIN runs r ON r.id = a.run_id"
	    " WHERE (?1 = 0 OR a.run_id = ?1) AND a.id > ?2"
	    " ORDER BY a.id DESC LIMIT ?3",
	[Q_ALERT_MODULES] = "SELECT module FROM alert_modules"
	    " WHERE alert_id = ?1 ORDER BY ord",
	[Q_ALERT_COUNTS] = "SELECT r.name, a.kind, count(*) FROM alerts a"
	    " JOIN runs r ON r.id = a.run_id GROUP BY r.name, a.kind"
	    " ORDER BY r.name, a.kind",
	[Q_ARRIVALS] = "SELECT step, wall_time FROM checkpoints"
	    " WHERE run_id = ?1 AND " ARRIVED
	    " ORDER BY step DESC, id DESC LIMIT ?2",
	/* Stalled: a stall alert at the step of the latest arrival. */
	[Q_RUN_STALLED] = "SELECT EXISTS (SELECT 1 FROM alerts"
	    " WHERE run_id = ?1 AND kind = 'stalled' AND step ="
	    " (SELECT max(step) FROM checkpoints WHERE run_id = ?1 AND "
	    ARRIVED "))",
	[Q_SEL_AT] = "SELECT id FROM selections WHERE checkpoint_id = ?1"
	    " AND top_percent = ?2 AND embeddings = ?3",
	/* The last ?5 selections up to step ?4, in step order. */
	[Q_SEL_STEPS] = "SELECT id, step, modules, version FROM (SELECT c.id,"
	    " c.step, s.modules, s.version FROM selections s"
	    " JOIN checkpoints c ON c.id = s.checkpoint_id"
	    " WHERE s.run_id = ?1 AND s.top_percent = ?2 AND s.embeddings = ?3"
	    " AND c.status = 'done' AND c.step <= ?4"
	    " ORDER BY c.step DESC, c.id DESC LIMIT ?5) ORDER BY step, id",
};

/*
 * The metrics store_history() serves: column, class expression, and which
 * rows have a point (a matrix with NaN/Inf weights has a NaN point).
 */
#define HIST_ALL	"1"
#define HIST_HT	\
	"(m.alpha_status IS NOT NULL OR m.status = 'nonfinite')"
static const struct {
	const char	*name, *col, *cls, *where;
} hist_metrics[] = {
	{ "snr", "m.snr", "m.snr_class", HIST_ALL },
	{ "s1", "m.s1", "NULL", HIST_ALL },
	{ "sigma_hat", "m.sigma_hat", "NULL", HIST_ALL },
	{ "tau", "m.tau", "NULL", HIST_ALL },
	{ "mp_rank", "m.mp_rank", "NULL", HIST_ALL },
	{ "signal", "m.signal", "NULL", HIST_ALL },
	{ "noise", "m.noise", "NULL", HIST_ALL },
	{ "fro2", "m.fro2", "NULL", HIST_ALL },
	{ "stable_rank", "m.stable_rank", "NULL", HIST_ALL },
	/* Not computed (rows from before schema 5): no point. */
	{ "alpha", "m.alpha", "NULL", HIST_HT },
	{ "alpha_weighted", "m.alpha_weighted", "NULL", HIST_HT },
	{ "ks", "m.ks", "NULL", HIST_HT },
	{ "log_spectral_norm", "m.log_spectral_norm", "NULL", HIST_HT },
};

/* Values of ?6, column 6 of a history query (see store_history()). */
#define HIST_SQL \
	"SELECT x.module, x.type, x.layer, c.step, c.wall_time," \
	" CASE WHEN m.status = 'ok' THEN %s END," \
	" CASE WHEN m.status = 'ok' THEN %s END" \
	" FROM metrics m JOIN matrices x ON x.id = m.matrix_id" \
	" JOIN checkpoints c ON c.id = m.checkpoint_id" \
	" WHERE c.run_id = ?1 AND c.status = 'done'" \
	" AND m.status IN ('ok', 'nonfinite') AND %s" \
	" AND (?2 IS NULL OR x.type = ?2)" \
	" ORDER BY x.module, c.step, c.id"

static const char *const ckpt_names[CK_NSTATUS] = {
	[CK_PENDING] = "pending",
	[CK_ANALYZING] = "analyzing",
	[CK_DONE] = "done",
	[CK_FAILED] = "failed",
	[CK_UNSUPPORTED] = "unsupported",
	[CK_VANISHED] = "vanished",
	[CK_INCOMPLETE] = "incomplete",
};

/* SQLite primary result codes and what they mean to a caller. */
static const struct {
	int		 sqlite;
	enum spd_err	 err;
} err_map[] = {
	{ SQLITE_BUSY, SPD_EBUSY },
	{ SQLITE_LOCKED, SPD_EBUSY },
	{ SQLITE_FULL, SPD_EIO },
	{ SQLITE_IOERR, SPD_EIO },
	{ SQLITE_CANTOPEN, SPD_EIO },
	{ SQLITE_READONLY, SPD_EIO },
	{ SQLITE_PERM, SPD_EIO },
	{ SQLITE_PROTOCOL, SPD_EIO },
	{ SQLITE_CORRUPT, SPD_EFORMAT },
	{ SQLITE_NOTADB, SPD_EFORMAT },
	{ SQLITE_SCHEMA, SPD_EFORMAT },
	{ SQLITE_NOMEM, SPD_ENOMEM },
	{ SQLITE_CONSTRAINT, SPD_EINVAL },
	{ SQLITE_TOOBIG, SPD_EINVAL },
	{ SQLITE_RANGE, SPD_EINVAL },
	{ SQLITE_MISMATCH, SPD_EINVAL },
};

/* --- small helpers -------------------------------------------------------- */

/* Returns the checkpoint status name, "unknown" when out of range. */
const char *
ckpt_status_name(enum ckpt_status st)
{
	if ((unsigned)st >= CK_NSTATUS)
		return "unknown";
	return ckpt_names[st];
}

/* Looks a checkpoint status up by name. */
enum spd_err
ckpt_status_parse(const char *name, enum ckpt_status *out)
{
	size_t i;

	for (i = 0; name != NULL && i < CK_NSTATUS; i++) {
		if (strcmp(ckpt_names[i], name) == 0) {
			*out = (enum ckpt_status)i;
			return SPD_OK;
		}
	}
	return SPD_EINVAL;
}

/* Maps a SQLite result code (primary or extended) to an spd_err. */
static enum spd_err
map_rc(int rc)
{
	size_t i;

	for (i = 0; i < nitems(err_map); i++)
		if (err_map[i].sqlite == (rc & 0xff))
			return err_map[i].err;
	return SPD_EINTERNAL;
}

/* The kind of write fault a SQLite result code means. */
static enum store_fault
fault_of(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return STORE_FAULT_FULL;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return STORE_FAULT_IO;
	default:
		return STORE_FAULT_NONE;
	}
}

/*
 * Fails with SQLite's error rc: "store: <op>: <message>". The message is
 * the connection's when it belongs to rc, else the generic one.
 */
static enum spd_err
db_fail(struct store *s, int rc, const char *op, struct spd_errbuf *eb)
{
	const char *msg = sqlite3_errstr(rc);

	if (s != NULL && s->db != NULL &&
	    (sqlite3_errcode(s->db) & 0xff) == (rc & 0xff))
		msg = sqlite3_errmsg(s->db);
	if (s != NULL && s->fault == STORE_FAULT_NONE)
		s->fault = fault_of(rc);
	return spd_fail(eb, map_rc(rc), "store: %s: %s", op, msg);
}

/* Unix time now, in seconds. */
static double
wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Prepares the statement text. */
static enum spd_err
prep_sql(struct store *s, const char *text, sqlite3_stmt **st,
    const char *op, struct spd_errbuf *eb)
{
	int rc;

	rc = sqlite3_prepare_v2(s->db, text, -1, st, NULL);
	if (rc != SQLITE_OK)
		return db_fail(s, rc, op, eb);
	return SPD_OK;
}

_Static_assert(Q_COUNT <= STORE_NCACHE, "STORE_NCACHE too small");

/*
 * Gives statement q of the table: the cached one when it is not in use,
 * else a new one. Either way the caller hands it back with release().
 */
static enum spd_err
prep(struct store *s, enum q q, sqlite3_stmt **st, const char *op,
    struct spd_errbuf *eb)
{
	enum spd_err rc;

	if (s->cache[q] != NULL && !sqlite3_stmt_busy(s->cache[q])) {
		*st = s->cache[q];
		return SPD_OK;
	}
	rc = prep_sql(s, sql[q], st, op, eb);
	if (rc == SPD_OK && s->cache[q] == NULL)
		s->cache[q] = *st;
	return rc;
}

/* Hands back a statement: a cached one is reset for reuse, others freed. */
static void
release(struct store *s, sqlite3_stmt *st)
{
	size_t i;

	if (st == NULL)
		return;
	for (i = 0; i < Q_COUNT; i++)
		if (s->cache[i] == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return;
		}
	sqlite3_finalize(st);
}

/*
 * Steps st once: SPD_OK with *row true (a row) or false (done), else the
 * error. row may be NULL for statements that return nothing.
 */
static enum spd_err
step(struct store *s, sqlite3_stmt *st, bool *row, const char *op,
    struct spd_errbuf *eb)
{
	int rc;

	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		(void)sqlite3_reset(st);
		return db_fail(s, rc, op, eb);
	}
	if (row != NULL)
		*row = rc == SQLITE_ROW;
	return SPD_OK;
}

/* Prepares statement q, runs it to completion and finalizes it. */
static enum spd_err
exec_q(struct store *s, enum q q, const char *op, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;

	rc = prep(s, q, &st, op, eb);
	if (rc == SPD_OK)
		rc = step(s, st, NULL, op, eb);
	release(s, st);
	return rc;
}

/* Accumulating binders: each does nothing once *rc holds an error. */
static void
b_int(sqlite3_stmt *st, int i, int64_t v, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = sqlite3_bind_int64(st, i, v);
}

/* Binds an unsigned value; above INT64_MAX fails with SQLITE_RANGE. */
static void
b_u64(sqlite3_stmt *st, int i, uint64_t v, int *rc)
{
	if (*rc == SQLITE_OK && v > INT64_MAX)
		*rc = SQLITE_RANGE;
	b_int(st, i, (int64_t)v, rc);
}

/* Binds a double; NaN becomes NULL explicitly (SQLite would anyway). */
static void
b_real(sqlite3_stmt *st, int i, double v, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = isnan(v) ? sqlite3_bind_null(st, i) :
		    sqlite3_bind_double(st, i, v);
}

/* Binds a string that outlives the step; NULL binds NULL. */
static void
b_text(sqlite3_stmt *st, int i, const char *v, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = v == NULL ? sqlite3_bind_null(st, i) :
		    sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* Fails for the result of a chain of binders. */
static enum spd_err
bind_fail(struct store *s, int rc, const char *op, struct spd_errbuf *eb)
{
	if (rc == SQLITE_RANGE)
		return spd_fail(eb, SPD_EINVAL, "store: %s: value out of range",
		    op);
	return db_fail(s, rc, op, eb);
}

/* Reads a REAL column; NULL (a stored NaN) reads as NaN. */
static double
col_real(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NAN;
	return sqlite3_column_double(st, i);
}

/* Reads a non-negative INTEGER column (negative reads as 0). */
static uint64_t
col_u64(sqlite3_stmt *st, int i)
{
	int64_t v = sqlite3_column_int64(st, i);

	return v < 0 ? 0 : (uint64_t)v;
}

/* Reads a TEXT column, NULL when NULL. */
static const char *
col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

/* The class string of v for snr_class, NULL when finite. */
static const char *
class_of(double v)
{
	if (isnan(v))
		return "nan";
	if (isinf(v))
		return v > 0 ? "inf" : "-inf";
	return NULL;
}

/* Reads a value with its class column (see class_of()). */
static double
col_classed(sqlite3_stmt *st, int vi, int ci)
{
	const char *cls = col_text(st, ci);

	if (cls == NULL)
		return col_real(st, vi);
	if (strcmp(cls, "inf") == 0)
		return INFINITY;
	if (strcmp(cls, "-inf") == 0)
		return -INFINITY;
	return NAN;
}

/* Fills m from the SNR_COLS starting at column i. */
static void
metric_fill(sqlite3_stmt *st, int i, struct snr_result *m)
{
	m->snr = col_classed(st, i, i + 1);
	m->s1 = col_real(st, i + 2);
	m->sigma_hat = col_real(st, i + 3);
	m->tau = col_real(st, i + 4);
	m->mp_rank = (size_t)col_u64(st, i + 5);
	m->signal = col_real(st, i + 6);
	m->noise = col_real(st, i + 7);
	m->fro2 = col_real(st, i + 8);
	m->stable_rank = col_real(st, i + 9);
}

/*
 * Fills *ht and *has from the HT_COLS starting at column i: *has false
 * (metrics NaN) when alpha_status is NULL or unknown. sigma is derived
 * as the fit does; n_evals is not stored (0).
 */
static void
ht_fill(sqlite3_stmt *st, int i, struct heavytail_result *ht, bool *has)
{
	const char		*name = col_text(st, i + 6);
	enum heavytail_status	 hs;

	memset(ht, 0, sizeof *ht);
	*has = false;
	for (hs = HEAVYTAIL_OK; name != NULL && hs <= HEAVYTAIL_FLAT; hs++)
		if (strcmp(heavytail_status_name(hs), name) == 0)
			break;
	*has = name != NULL && hs <= HEAVYTAIL_FLAT;
	ht->status = *has ? hs : HEAVYTAIL_OK;
	ht->alpha = *has ? col_real(st, i) : NAN;
	ht->alpha_weighted = *has ? col_real(st, i + 1) : NAN;
	ht->ks = *has ? col_real(st, i + 2) : NAN;
	ht->log_spectral_norm = *has ? col_real(st, i + 3) : NAN;
	ht->xmin = *has ? col_real(st, i + 4) : NAN;
	ht->n_tail = *has ? (size_t)col_u64(st, i + 5) : 0;
	ht->sigma = ht->n_tail > 0 ? (ht->alpha - 1) /
	    sqrt((double)ht->n_tail) : NAN;
}

/*
 * Fails with STORE_FAULT_GONE unless the database path still names the
 * file s opened: a deleted or replaced file would take every later write
 * into an inode nobody will read again.
 */
static enum spd_err
check_file(struct store *s, const char *op, struct spd_errbuf *eb)
{
	struct stat	sb;
	int		err = 0;

	if (!s->have_id)
		return SPD_OK;
	if (stat(s->path, &sb) == -1)
		err = errno;
	else if (sb.st_dev == s->dev && sb.st_ino == s->ino)
		return SPD_OK;
	s->fault = STORE_FAULT_GONE;
	return spd_fail(eb, SPD_EIO, "store: %s: the database file %s was %s "
	    "while open", op, s->path, err == 0 ? "replaced" :
	    err == ENOENT ? "deleted" : strerror(err));
}

/* Fails unless s is open read-write. */
static enum spd_err
need_rw(struct store *s, const char *op, struct spd_errbuf *eb)
{
	if (s == NULL || s->db == NULL)
		return spd_fail(eb, SPD_EINVAL, "store: %s: no store", op);
	if (s->mode != STORE_RW)
		return spd_fail(eb, SPD_EINVAL, "store: %s: store is read-only",
		    op);
	s->fault = STORE_FAULT_NONE;
	return check_file(s, op, eb);
}

/* Fails unless s is open. */
static enum spd_err
need_open(struct store *s, const char *op, struct spd_errbuf *eb)
{
	if (s == NULL || s->db == NULL)
		return spd_fail(eb, SPD_EINVAL, "store: %s: no store", op);
	s->fault = STORE_FAULT_NONE;
	return SPD_OK;
}

/* Result of a callback: nonzero stops the walk. */
static enum spd_err
cb_result(int stop, const char *op, struct spd_errbuf *eb)
{
	if (stop != 0)
		return spd_fail(eb, SPD_ECANCELED, "store: %s: stopped", op);
	return SPD_OK;
}

/* Begins a write transaction. */
static enum spd_err
tx_begin(struct store *s, const char *op, struct spd_errbuf *eb)
{
	return exec_q(s, Q_BEGIN, op, eb);
}

/* Commits unless the file went away; on failure the caller rolls back. */
static enum spd_err
tx_commit(struct store *s, const char *op, struct spd_errbuf *eb)
{
	enum spd_err rc;

	if ((rc = check_file(s, op, eb)) != SPD_OK)
		return rc;
	return exec_q(s, Q_COMMIT, op, eb);
}

/* Rolls back the open transaction, if SQLite has not already. */
static void
tx_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		(void)exec_q(s, Q_ROLLBACK, "rollback", NULL);
}

/* --- opening ------------------------------------------------------------ */

/* Reads the single integer result of statement q. */
static enum spd_err
query_int(struct store *s, enum q q, int64_t *v, const char *op,
    struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	bool		 row = false;

	rc = prep(s, q, &st, op, eb);
	if (rc == SPD_OK)
		rc = step(s, st, &row, op, eb);
	if (rc == SPD_OK && !row)
		rc = spd_fail(eb, SPD_EINTERNAL, "store: %s: no result", op);
	if (rc == SPD_OK)
		*v = sqlite3_column_int64(st, 0);
	release(s, st);
	return rc;
}

/* Reads user_version and checks the file is ours (or empty) and not newer. */
static enum spd_err
check_header(struct store *s, int64_t *uv, const char *op,
    struct spd_errbuf *eb)
{
	int64_t		app = 0, ntab = 0;
	enum spd_err	rc;

	rc = query_int(s, Q_USER_VERSION, uv, op, eb);
	if (rc == SPD_OK)
		rc = query_int(s, Q_APP_ID, &app, op, eb);
	if (rc == SPD_OK)
		rc = query_int(s, Q_NTABLES, &ntab, op, eb);
	if (rc != SPD_OK)
		return rc;
	if (*uv > STORE_SCHEMA_VERSION)
		return spd_fail(eb, SPD_EFORMAT, "store: %s: schema version %"
		    PRId64 " is newer than this spectrumd's (%d)", op, *uv,
		    STORE_SCHEMA_VERSION);
	if (app != STORE_APP_ID && (*uv > 0 || app != 0 || ntab > 0))
		return spd_fail(eb, SPD_EFORMAT,
		    "store: %s: not a spectrumd database", op);
	if (s->mode == STORE_RO && *uv != STORE_SCHEMA_VERSION)
		return spd_fail(eb, SPD_EFORMAT, "store: %s: schema version %"
		    PRId64 ", need %d (open it read-write once)", op, *uv,
		    STORE_SCHEMA_VERSION);
	return SPD_OK;
}

/* Runs one or more ';'-separated statements. */
static enum spd_err
exec_sql(struct store *s, const char *text, const char *op,
    struct spd_errbuf *eb)
{
	int rc;

	rc = sqlite3_exec(s->db, text, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return db_fail(s, rc, op, eb);
	return SPD_OK;
}

/* Fails when a migration left a dangling reference. */
static enum spd_err
foreign_keys_ok(struct store *s, const char *op, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	bool		 row = false;

	rc = prep_sql(s, "PRAGMA foreign_key_check", &st, op, eb);
	if (rc == SPD_OK)
		rc = step(s, st, &row, op, eb);
	sqlite3_finalize(st);
	if (rc == SPD_OK && row)
		rc = spd_fail(eb, SPD_EFORMAT, "store: %s: a migration broke "
		    "a reference", op);
	return rc;
}

/* Applies the migrations past user_version in one transaction. */
static enum spd_err
migrate(struct store *s, const char *op, struct spd_errbuf *eb)
{
	char		set[96];
	int64_t		uv = 0;
	enum spd_err	rc;

	/* Off outside the transaction: rebuilt tables must not cascade. */
	rc = exec_sql(s, "PRAGMA foreign_keys = OFF", op, eb);
	if (rc == SPD_OK)
		rc = tx_begin(s, op, eb);
	if (rc != SPD_OK)
		return rc;
	rc = check_header(s, &uv, op, eb);	/* again, under the lock */
	for (; rc == SPD_OK && uv < STORE_SCHEMA_VERSION; uv++)
		rc = exec_sql(s, migrations[uv], op, eb);
	snprintf(set, sizeof set, "PRAGMA user_version = %d;"
	    " PRAGMA application_id = %d;", STORE_SCHEMA_VERSION,
	    STORE_APP_ID);
	if (rc == SPD_OK)
		rc = exec_sql(s, set, op, eb);
	if (rc == SPD_OK)
		rc = foreign_keys_ok(s, op, eb);
	if (rc == SPD_OK)
		rc = tx_commit(s, op, eb);
	if (rc != SPD_OK)
		tx_rollback(s);
	if (rc == SPD_OK)
		rc = exec_sql(s, "PRAGMA foreign_keys = ON", op, eb);
	return rc;
}

/* Turns on WAL (checking it took) and the other per-connection settings. */
static enum spd_err
set_wal(struct store *s, const char *op, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	bool		 row = false;
	const char	*mode;

	rc = prep_sql(s, "PRAGMA journal_mode = WAL", &st, op, eb);
	if (rc == SPD_OK)
		rc = step(s, st, &row, op, eb);
	mode = row ? col_text(st, 0) : NULL;
	if (rc == SPD_OK && (mode == NULL || strcmp(mode, "wal") != 0))
		rc = spd_fail(eb, SPD_EIO, "store: %s: cannot use WAL mode"
		    " (journal mode is %s)", op, mode != NULL ? mode : "?");
	sqlite3_finalize(st);
	if (rc == SPD_OK)
		rc = exec_sql(s, "PRAGMA synchronous = NORMAL", op, eb);
	return rc;
}

/* Opens the connection of s, sets its pragmas, checks or migrates. */
static enum spd_err
store_connect(struct store *s, const char *path, const char *op,
    struct spd_errbuf *eb)
{
	int64_t		uv = 0;
	int		flags, rc;
	enum spd_err	err;

	flags = s->mode == STORE_RW ?
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
	rc = sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		return db_fail(s, rc, op, eb);
	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
	err = exec_sql(s, "PRAGMA foreign_keys = ON", op, eb);
	if (err == SPD_OK)
		err = check_header(s, &uv, op, eb);
	if (err == SPD_OK && s->mode == STORE_RW)
		err = set_wal(s, op, eb);
	if (err == SPD_OK && s->mode == STORE_RW && uv < STORE_SCHEMA_VERSION)
		err = migrate(s, op, eb);
	return err;
}

/* Notes which file path names now, for check_file(). */
static enum spd_err
remember_file(struct store *s, const char *path, const char *op,
    struct spd_errbuf *eb)
{
	struct stat sb;

	if (stat(path, &sb) == -1)	/* e.g. ":memory:": nothing to check */
		return SPD_OK;
	if ((s->path = strdup(path)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "store: %s: out of memory", op);
	s->dev = sb.st_dev;
	s->ino = sb.st_ino;
	s->have_id = true;
	return SPD_OK;
}

/* Opens (and for RW creates and migrates) the database at path. */
enum spd_err
store_open(const char *path, enum store_mode mode, struct store **out,
    struct spd_errbuf *eb)
{
	struct store	*s;
	struct stat	 sb;
	char		 op[96];
	enum spd_err	 rc;

	if (path == NULL || out == NULL || (mode != STORE_RW &&
	    mode != STORE_RO))
		return spd_fail(eb, SPD_EINVAL, "store: open: bad arguments");
	snprintf(op, sizeof op, "open %s", path);
	if (mode == STORE_RO && stat(path, &sb) == -1 && errno == ENOENT)
		return spd_fail(eb, SPD_ENOTFOUND, "store: %s: no such file",
		    op);
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return spd_fail(eb, SPD_ENOMEM, "store: %s: out of memory", op);
	s->mode = mode;
	rc = store_connect(s, path, op, eb);
	if (rc == SPD_OK && mode == STORE_RW)
		rc = remember_file(s, path, op, eb);
	if (rc != SPD_OK) {
		store_close(s);
		return rc;
	}
	*out = s;
	return SPD_OK;
}

/* Closes the connection and frees s. */
void
store_close(struct store *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(s->cache[i]);
	sqlite3_close_v2(s->db);
	free(s->path);
	free(s->copy_sql);
	free(s);
}

/* --- writing ------------------------------------------------------------ */

/* Finds or creates a run by name, updating its dir. */
enum spd_err
store_run_ensure(struct store *s, const char *name, const char *dir,
    int64_t *run_id, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	char		 op[160];
	enum spd_err	 rc;
	bool		 row = false;
	int		 brc = SQLITE_OK;

	snprintf(op, sizeof op, "run %s", name != NULL ? name : "(null)");
	rc = need_rw(s, op, eb);
	if (rc == SPD_OK && (name == NULL || dir == NULL || run_id == NULL))
		rc = spd_fail(eb, SPD_EINVAL, "store: %s: bad arguments", op);
	if (rc == SPD_OK)
		rc = prep(s, Q_RUN_UPSERT, &st, op, eb);
	if (rc != SPD_OK)
		goto out;
	b_text(st, 1, name, &brc);
	b_text(st, 2, dir, &brc);
	b_real(st, 3, wall_now(), &brc);
	rc = brc != SQLITE_OK ? bind_fail(s, brc, op, eb) :
	    step(s, st, &row, op, eb);
	if (rc == SPD_OK && !row)
		rc = spd_fail(eb, SPD_EINTERNAL, "store: %s: no id", op);
	if (rc == SPD_OK)
		*run_id = sqlite3_column_int64(st, 0);
out:
	release(s, st);
	return rc;
}

/* Inserts checkpoint (run_id, path) unless it exists. */
static enum spd_err
ckpt_insert(struct store *s, int64_t run_id, const char *path,
    long long step_no, double wall_time, enum ckpt_status status,
    const char *op, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	int		 brc = SQLITE_OK;

	rc = prep(s, Q_CKPT_INSERT, &st, op, eb);
	if (rc != SPD_OK)
		return rc;
	b_int(st, 1, run_id, &brc);
	b_text(st, 2, path, &brc);
	b_int(st, 3, step_no, &brc);
	b_real(st, 4, isfinite(wall_time) ? wall_time : 0, &brc);
	b_text(st, 5, ckpt_status_name(status), &brc);
	rc = brc != SQLITE_OK ? bind_fail(s, brc, op, eb) :
	    step(s, st, NULL, op, eb);
	release(s, st);
	return rc;
}

/* Reads id and status of checkpoint (run_id, path). */
static enum spd_err
ckpt_find(struct store *s, int64_t run_id, const char *path, int64_t *id,
    enum ckpt_status *cur, const char *op, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	bool		 row = false;
	int		 brc = SQLITE_OK;

	rc = prep(s, Q_CKPT_FIND, &st, op, eb);
	if (rc != SPD_OK)
		return rc;
	b_int(st, 1, run_id, &brc);
	b_text(st, 2, path, &brc);
	rc = brc != SQLITE_OK ? bind_fail(s, brc, op, eb) :
	    step(s, st, &row, op, eb);
	if (rc == SPD_OK && !row)
		rc = spd_fail(eb, SPD_EINTERNAL, "store: %s: vanished", op);
	if (rc == SPD_OK && ckpt_status_parse(col_text(st, 1), cur) != SPD_OK)
		rc = spd_fail(eb, SPD_EFORMAT, "store: %s: bad status", op);
	if (rc == SPD_OK)
		*id = sqlite3_column_int64(st, 0);
	release(s, st);
	return rc;
}

/* Finds or inserts a checkpoint; an existing row keeps its status. */
enum spd_err
store_ckpt_ensure(struct store *s, int64_t run_id, const char *path,
    long long step_no, double wall_time, enum ckpt_status status,
    int64_t *ckpt_id, enum ckpt_status *cur, struct spd_errbuf *eb)
{
	char		op[160];
	enum spd_err	rc;
	int64_t		id = 0;
	enum ckpt_status st = CK_PENDING;

	snprintf(op, sizeof op, "checkpoint %s",
	    path != NULL ? path : "(null)");
	rc = need_rw(s, op, eb);
	if (rc == SPD_OK && (path == NULL || ckpt_id == NULL ||
	    (unsigned)status >= CK_NSTATUS))
		rc = spd_fail(eb, SPD_EINVAL, "store: %s: bad arguments", op);
	if (rc == SPD_OK)
		rc = ckpt_insert(s, run_id, path, step_no, wall_time, status,
		    op, eb);
	if (rc == SPD_OK)
		rc = ckpt_find(s, run_id, path, &id, &st, op, eb);
	if (rc != SPD_OK)
		return rc;
	*ckpt_id = id;
	if (cur != NULL)
		*cur = st;
	return SPD_OK;
}

/* Runs an UPDATE of one checkpoint; ENOTFOUND when no row changed. */
static enum spd_err
ckpt_update(struct store *s, sqlite3_stmt *st, int brc, const char *op,
    struct spd_errbuf *eb)
{
	enum spd_err rc;

	rc = brc != SQLITE_OK ? bind_fail(s, brc, op, eb) :
	    step(s, st, NULL, op, eb);
	if (rc == SPD_OK && sqlite3_changes(s->db) == 0)
		rc = spd_fail(eb, SPD_ENOTFOUND, "store: %s: no such checkpoint",
		    op);
	return rc;
}

/* Sets status and error of a checkpoint, and its start/finish times. */
enum spd_err
store_ckpt_set_status(struct store *s, int64_t ckpt_id,
    enum ckpt_status status, const char *error, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	char		 op[96];
	enum spd_err	 rc;
	int		 brc = SQLITE_OK;

	snprintf(op, sizeof op, "set status of checkpoint %" PRId64, ckpt_id);
	rc = need_rw(s, op, eb);
	if (rc == SPD_OK && (unsigned)status >= CK_NSTATUS)
		rc = spd_fail(eb, SPD_EINVAL, "store: %s: bad status", op);
	if (rc == SPD_OK)
		rc = prep(s, Q_CKPT_STATUS, &st, op, eb);
	if (rc != SPD_OK)
		goto out;
	b_int(st, 1, ckpt_id, &brc);
	b_text(st, 2, ckpt_status_name(status), &brc);
	b_text(st, 3, error, &brc);
	b_real(st, 4, wall_now(), &brc);
	rc = ckpt_update(s, st, brc, op, eb);
out:
	release(s, st);
	return rc;
}

/* Records the progress of an analysing checkpoint. */
enum spd_err
store_ckpt_progress(struct store *s, int64_t ckpt_id, uint64_t done,
    uint64_t total, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	char		 op[96];
	enum spd_err	 rc;
	int		 brc = SQLITE_OK;

	snprintf(op, sizeof op, "progress of checkpoint %" PRId64, ckpt_id);
	rc = need_rw(s, op, eb);
	if (rc == SPD_OK)
		rc = prep(s, Q_CKPT_PROGRESS, &st, op, eb);
	if (rc != SPD_OK)
		goto out;
	b_int(st, 1, ckpt_id, &brc);
	b_u64(st, 2, done, &brc);
	b_u64(st, 3, total, &brc);
	rc = ckpt_update(s, st, brc, op, eb);
out:
	release(s, st);
	return rc;
}

/* Marks every analysing checkpoint pending again. */
enum spd_err
store_reset_interrupted(struct store *s, struct spd_errbuf *eb)
{
	const char	*op = "reset interrupted checkpoints";
	enum spd_err	 rc;

	rc = need_rw(s, op, eb);
	if (rc == SPD_OK)
		rc = exec_q(s, Q_CKPT_RESET, op, eb);
	return rc;
}

/* Marks a checkpoint incomplete with a reason; *since: first seen so. */
enum spd_err
store_ckpt_set_incomplete(struct store *s, int64_t ckpt_id,
    const char *reason, double now, double *since, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	char		 op[96];
	enum spd_err	 rc;
	bool		 row = false;
	int		 brc = SQLITE_OK;

	snprintf(op, sizeof op, "mark checkpoint %" PRId64 " incomplete",
	    ckpt_id);
	rc = need_rw(s, op, eb);
	if (rc == SPD_OK)
		rc = prep(s, Q_CKPT_INCOMPLETE, &st, op, eb);
	if (rc != SPD_OK)
		goto out;
	b_int(st, 1, ckpt_id, &brc);
	b_text(st, 2, reason, &brc);
	b_real(st, 3, now, &brc);
	rc = brc != SQLITE_OK ? bind_fail(s, brc, op, eb) :
	    step(s, st, &row, op, eb);
	if (rc == SPD_OK && !row)
		rc = spd_fail(eb, SPD_ENOTFOUND, "store: %s: no such checkpoint",
		    op);
	if (rc == SPD_OK && since != NULL)
		*since = sqlite3_column_double(st, 0);
	if (rc == SPD_OK)	/* finish the statement: RETURNING writes last */
		rc = step(s, st, &row, op, eb);
out:
	release(s, st);
	return rc;
}

/* Runs a write of one checkpoint bound to (?1 id) or (?1 run, ?2 path). */
static enum spd_err
ckpt_write(struct store *s, enum q q, int64_t id, const char *path,
    bool *changed, const char *op, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	int		 brc = SQLITE_OK;

	rc = need_rw(s, op, eb);
	if (rc == SPD_OK)
		rc = prep(s, q, &st, op, eb);
	if (rc != SPD_OK)
		goto out;
	b_int(st, 1, id, &brc);
	if (path != NULL)
		b_text(st, 2, path, &brc);
	rc = brc != SQLITE_OK ? bind_fail(s, brc, op, eb) :
	    step(s, st, NULL, op, eb);
	if (rc == SPD_OK && changed != NULL)
		*changed = sqlite3_changes(s->db) > 0;
out:
	release(s, st);
	return rc;
}

/* Makes an incomplete (or given-up) checkpoint pending again. */
enum spd_err
store_ckpt_resume(struct store *s, int64_t ckpt_id, bool *resumed,
    struct spd_errbuf *eb)
{
	char op[96];

	snprintf(op, sizeof op, "resume checkpoint %" PRId64, ckpt_id);
	return ckpt_write(s, Q_CKPT_RESUME, ckpt_id, NULL, resumed, op, eb);
}

/* Deletes checkpoint (run_id, path) if it is incomplete or given up. */
enum spd_err
store_ckpt_drop_incomplete(struct store *s, int64_t run_id,
    const char *path, struct spd_errbuf *eb)
{
	char op[160];

	snprintf(op, sizeof op, "drop incomplete %.100s", path);
	return ckpt_write(s, Q_CKPT_DROP, run_id, path, NULL, op, eb);
}

/* The kind of fault of the last failed write. */
enum store_fault
store_last_fault(const struct store *s)
{
	return s != NULL ? s->fault : STORE_FAULT_NONE;
}

/* An exclusive lock on the database file, held by an open descriptor. */
struct store_lock {
	int	 fd;
	char	*path;
};

/* Takes the lock on path (creating the file, empty, if needed). */
enum spd_err
store_lock(const char *path, struct store_lock **out, struct spd_errbuf *eb)
{
	struct store_lock	*l;
	enum spd_err		 rc;

	if ((l = calloc(1, sizeof *l)) == NULL ||
	    (l->path = strdup(path)) == NULL) {
		free(l);
		return spd_fail(eb, SPD_ENOMEM, "store: lock: out of memory");
	}
	l->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	if (l->fd == -1)
		rc = spd_fail(eb, SPD_EIO, "store: %s: %s", path,
		    strerror(errno));
	else if (flock(l->fd, LOCK_EX | LOCK_NB) == -1)
		rc = errno == EWOULDBLOCK ? spd_fail(eb, SPD_EBUSY, "store: %s "
		    "is in use by another spectrumd (it holds the lock); stop "
		    "that one or give this one another --db", path) :
		    spd_fail(eb, SPD_EIO, "store: lock %s: %s", path,
		    strerror(errno));
	else {
		*out = l;
		return SPD_OK;
	}
	if (l->fd != -1)
		close(l->fd);
	free(l->path);
	free(l);
	return rc;
}

/* Checks that the locked file is still the one at its path. */
enum spd_err
store_lock_check(const struct store_lock *l, struct spd_errbuf *eb)
{
	struct stat	a, b;

	if (fstat(l->fd, &a) == -1)
		return spd_fail(eb, SPD_EIO, "store: %s: %s", l->path,
		    strerror(errno));
	if (stat(l->path, &b) == -1) {
		if (errno == ENOENT)
			return spd_fail(eb, SPD_ENOTFOUND, "the database file "
			    "%s was deleted while open", l->path);
		return spd_fail(eb, SPD_EIO, "the database file %s: %s",
		    l->path, strerror(errno));
	}
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return spd_fail(eb, SPD_ENOTFOUND, "the database file %s was "
		    "replaced while open", l->path);
	return SPD_OK;
}

/* Releases the lock. */
void
store_unlock(struct store_lock *l)
{
	if (l == NULL)
		return;
	close(l->fd);
	free(l->path);
	free(l);
}

/* --- store_put_report --------------------------------------------------- */

/* One store_put_report in progress: its statements, reused per matrix. */
struct put {
	struct store		*s;
	const char		*op;
	struct spd_errbuf	*eb;
	int64_t			 run_id, ckpt_id;
	const char		*method;	/* of the report */
	sqlite3_stmt		*mat, *met, *spec, *copy;
	unsigned char		*buf;		/* encoded spectrum */
	size_t			 bufcap;
};

/* Runs statement q bound to the checkpoint id only (?1), to completion. */
static enum spd_err
put_exec_ckpt(struct put *p, enum q q)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	int		 brc = SQLITE_OK;

	rc = prep(p->s, q, &st, p->op, p->eb);
	if (rc != SPD_OK)
		return rc;
	b_int(st, 1, p->ckpt_id, &brc);
	rc = brc != SQLITE_OK ? bind_fail(p->s, brc, p->op, p->eb) :
	    step(p->s, st, NULL, p->op, p->eb);
	release(p->s, st);
	return rc;
}

/* Looks up the run of the checkpoint; ENOTFOUND when there is none. */
static enum spd_err
put_run(struct put *p)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	bool		 row = false;
	int		 brc = SQLITE_OK;

	rc = prep(p->s, Q_PUT_RUN, &st, p->op, p->eb);
	if (rc != SPD_OK)
		return rc;
	b_int(st, 1, p->ckpt_id, &brc);
	rc = brc != SQLITE_OK ? bind_fail(p->s, brc, p->op, p->eb) :
	    step(p->s, st, &row, p->op, p->eb);
	if (rc == SPD_OK && !row)
		rc = spd_fail(p->eb, SPD_ENOTFOUND,
		    "store: %s: no such checkpoint", p->op);
	if (rc == SPD_OK)
		p->run_id = sqlite3_column_int64(st, 0);
	release(p->s, st);
	return rc;
}

/* Upserts the matrices row of m (module, type default to the name). */
static enum spd_err
put_matrix(struct put *p, const struct mat_result *m, int64_t *id)
{
	const char	*module = m->module != NULL ? m->module : m->name;
	const char	*type = m->type != NULL ? m->type : module;
	enum spd_err	 rc;
	bool		 row = false;
	int		 brc = SQLITE_OK;

	if (m->name == NULL || (unsigned)m->dtype >= DT_COUNT)
		return spd_fail(p->eb, SPD_EINVAL, "store: %s: matrix without"
		    " a name or with a bad dtype", p->op);
	b_int(p->mat, 1, p->run_id, &brc);
	b_text(p->mat, 2, m->name, &brc);
	b_text(p->mat, 3, module, &brc);
	b_text(p->mat, 4, type, &brc);
	b_int(p->mat, 5, m->layer, &brc);
	b_int(p->mat, 6, m->embedding != 0, &brc);
	b_u64(p->mat, 7, m->rows, &brc);
	b_u64(p->mat, 8, m->cols, &brc);
	b_text(p->mat, 9, dtype_name(m->dtype), &brc);
	rc = brc != SQLITE_OK ? bind_fail(p->s, brc, p->op, p->eb) :
	    step(p->s, p->mat, &row, p->op, p->eb);
	if (rc == SPD_OK && !row)
		rc = spd_fail(p->eb, SPD_EINTERNAL, "store: %s: no matrix id",
		    p->op);
	if (rc == SPD_OK)
		*id = sqlite3_column_int64(p->mat, 0);
	sqlite3_reset(p->mat);
	return rc;
}

/*
 * Binds the heavy-tail metrics of m to parameters i … i + 6 in HT_COLS
 * order: all NULL unless m->has_ht.
 */
static void
b_ht(sqlite3_stmt *st, int i, const struct mat_result *m, int *brc)
{
	const struct heavytail_result	*h = &m->ht;
	bool				 has = m->has_ht;

	b_real(st, i, has ? h->alpha : NAN, brc);
	b_real(st, i + 1, has ? h->alpha_weighted : NAN, brc);
	b_real(st, i + 2, has ? h->ks : NAN, brc);
	b_real(st, i + 3, has ? h->log_spectral_norm : NAN, brc);
	b_real(st, i + 4, has ? h->xmin : NAN, brc);
	if (has && h->status == HEAVYTAIL_OK)
		b_u64(st, i + 5, h->n_tail, brc);
	else if (*brc == SQLITE_OK)
		*brc = sqlite3_bind_null(st, i + 5);
	b_text(st, i + 6, has ? heavytail_status_name(h->status) : NULL, brc);
}

/* Inserts the metrics row of m (matrix mid, position ord). */
static enum spd_err
put_metric(struct put *p, const struct mat_result *m, int64_t mid,
    size_t ord)
{
	const struct snr_result	*r = &m->m;
	enum spd_err		 rc;
	int			 brc = SQLITE_OK;

	b_int(p->met, 1, p->ckpt_id, &brc);
	b_int(p->met, 2, mid, &brc);
	b_u64(p->met, 3, ord, &brc);
	b_text(p->met, 4, mat_status_name(m->status), &brc);
	b_text(p->met, 5, m->error, &brc);
	b_real(p->met, 6, r->snr, &brc);
	b_text(p->met, 7, class_of(r->snr), &brc);
	b_real(p->met, 8, r->s1, &brc);
	b_real(p->met, 9, r->sigma_hat, &brc);
	b_real(p->met, 10, r->tau, &brc);
	b_u64(p->met, 11, r->mp_rank, &brc);
	b_real(p->met, 12, r->signal, &brc);
	b_real(p->met, 13, r->noise, &brc);
	b_real(p->met, 14, r->fro2, &brc);
	b_real(p->met, 15, r->stable_rank, &brc);
	b_real(p->met, 16, m->seconds, &brc);
	if (brc == SQLITE_OK)
		brc = m->has_fp ? sqlite3_bind_blob(p->met, 17, m->fp,
		    FINGERPRINT_LEN, SQLITE_STATIC) :
		    sqlite3_bind_null(p->met, 17);
	b_text(p->met, 18, m->has_fp ? p->method : NULL, &brc);
	if (m->from_ckpt != 0) {
		b_int(p->met, 19, m->from_run, &brc);
		b_int(p->met, 20, m->from_step, &brc);
	} else if (brc == SQLITE_OK) {	/* reset keeps old bindings */
		brc = sqlite3_bind_null(p->met, 19);
		if (brc == SQLITE_OK)
			brc = sqlite3_bind_null(p->met, 20);
	}
	b_ht(p->met, 21, m, &brc);
	rc = brc != SQLITE_OK ? bind_fail(p->s, brc, p->op, p->eb) :
	    step(p->s, p->met, NULL, p->op, p->eb);
	sqlite3_reset(p->met);
	return rc;
}

/* Encodes k floats as little-endian float32 into dst (k * 4 bytes). */
static void
sv_encode(const float *sv, size_t k, unsigned char *dst)
{
	uint32_t	u;
	size_t		i;

	for (i = 0; i < k; i++) {
		memcpy(&u, &sv[i], sizeof u);
		dst[4 * i] = (unsigned char)u;
		dst[4 * i + 1] = (unsigned char)(u >> 8);
		dst[4 * i + 2] = (unsigned char)(u >> 16);
		dst[4 * i + 3] = (unsigned char)(u >> 24);
	}
}

/* Decodes k little-endian float32 values from src. */
static void
sv_decode(const unsigned char *src, size_t k, float *sv)
{
	uint32_t	u;
	size_t		i;

	for (i = 0; i < k; i++) {
		u = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 |
		    (uint32_t)src[4 * i + 2] << 16 |
		    (uint32_t)src[4 * i + 3] << 24;
		memcpy(&sv[i], &u, sizeof u);
	}
}

/* Grows the encode buffer of p to n bytes. */
static enum spd_err
put_buf(struct put *p, size_t n)
{
	unsigned char *nb;

	if (n <= p->bufcap)
		return SPD_OK;
	nb = realloc(p->buf, n);
	if (nb == NULL)
		return spd_fail(p->eb, SPD_ENOMEM, "store: %s: out of memory",
		    p->op);
	p->buf = nb;
	p->bufcap = n;
	return SPD_OK;
}

/* Inserts the spectrum of m, when it has one. */
static enum spd_err
put_spectrum(struct put *p, const struct mat_result *m, int64_t mid)
{
	enum spd_err	rc;
	size_t		n;
	int		brc = SQLITE_OK;

	if (m->spectrum == NULL || m->k == 0)
		return SPD_OK;
	if (__builtin_mul_overflow(m->k, sizeof(float), &n))
		return spd_fail(p->eb, SPD_EINVAL, "store: %s: spectrum of %s"
		    " too long", p->op, m->name);
	rc = put_buf(p, n);
	if (rc != SPD_OK)
		return rc;
	sv_encode(m->spectrum, m->k, p->buf);
	b_int(p->spec, 1, p->ckpt_id, &brc);
	b_int(p->spec, 2, mid, &brc);
	b_u64(p->spec, 3, m->k, &brc);
	if (brc == SQLITE_OK)
		brc = sqlite3_bind_blob64(p->spec, 4, p->buf, n, SQLITE_STATIC);
	rc = brc != SQLITE_OK ? bind_fail(p->s, brc, p->op, p->eb) :
	    step(p->s, p->spec, NULL, p->op, p->eb);
	sqlite3_reset(p->spec);
	return rc;
}

/*
 * Builds, once per handle, the statement that copies a reused metrics row:
 * every column of the table as it is now (metrics added later included)
 * except the row's own keys, its timing and its origin.
 */
static enum spd_err
copy_sql_build(struct store *s, const char *op, struct spd_errbuf *eb)
{
	static const char *const own[] = { "checkpoint_id", "matrix_id",
	    "ord", "seconds", "reused_run", "reused_step" };
	sqlite3_stmt	*st = NULL;
	char		*cols = NULL, *t;
	const char	*c;
	enum spd_err	 rc;
	bool		 row = true;
	size_t		 i;

	if ((rc = prep(s, Q_METRIC_COLS, &st, op, eb)) != SPD_OK)
		return rc;
	while (rc == SPD_OK && (rc = step(s, st, &row, op, eb)) == SPD_OK &&
	    row) {
		c = col_text(st, 0);
		for (i = 0; c != NULL && i < nitems(own) &&
		    strcmp(c, own[i]) != 0; i++)
			;
		if (c == NULL || i < nitems(own))
			continue;
		t = spd_asprintf("%s%s\"%s\"", cols != NULL ? cols : "",
		    cols != NULL ? ", " : "", c);
		free(cols);
		if ((cols = t) == NULL)
			rc = spd_fail(eb, SPD_ENOMEM, "store: %s: out of memory",
			    op);
	}
	release(s, st);
	if (rc == SPD_OK && cols == NULL)
		rc = spd_fail(eb, SPD_EFORMAT, "store: %s: no metrics columns",
		    op);
	if (rc == SPD_OK) {
		s->copy_sql = spd_asprintf("INSERT INTO metrics (checkpoint_id,"
		    " matrix_id, ord, seconds, reused_run, reused_step, %s)"
		    " SELECT ?1, ?2, ?3, ?4, ?5, ?6, %s FROM metrics"
		    " WHERE checkpoint_id = ?7 AND matrix_id = ?8", cols, cols);
		if (s->copy_sql == NULL)
			rc = spd_fail(eb, SPD_ENOMEM, "store: %s: out of memory",
			    op);
	}
	free(cols);
	return rc;
}

/* Prepares the reused-row copy of p (built on first use). */
static enum spd_err
put_copy_prep(struct put *p)
{
	enum spd_err rc = SPD_OK;

	if (p->s->copy_sql == NULL)
		rc = copy_sql_build(p->s, p->op, p->eb);
	if (rc == SPD_OK)
		rc = prep_sql(p->s, p->s->copy_sql, &p->copy, p->op, p->eb);
	return rc;
}

/*
 * Gives the copied row of m (matrix mid) m's heavy-tail metrics when its
 * source had none (stored before schema 5; the analysis fitted its
 * spectrum). A source that had them keeps its own.
 */
static enum spd_err
put_ht_fill(struct put *p, const struct mat_result *m, int64_t mid)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	int		 brc = SQLITE_OK;

	if (!m->has_ht)
		return SPD_OK;
	if ((rc = prep(p->s, Q_PUT_HT, &st, p->op, p->eb)) != SPD_OK)
		return rc;
	b_int(st, 1, p->ckpt_id, &brc);
	b_int(st, 2, mid, &brc);
	b_ht(st, 3, m, &brc);
	rc = brc != SQLITE_OK ? bind_fail(p->s, brc, p->op, p->eb) :
	    step(p->s, st, NULL, p->op, p->eb);
	release(p->s, st);
	return rc;
}

/*
 * Inserts the metrics row of m: a reused result copies its source row
 * whole (so every metric column, bit for bit; heavy-tail metrics the
 * source lacks come from m), falling back to m's values when the source
 * is gone; a computed one inserts m's values.
 */
static enum spd_err
put_reused(struct put *p, const struct mat_result *m, int64_t mid,
    size_t ord)
{
	enum spd_err	rc;
	int		brc = SQLITE_OK;

	if (m->from_ckpt == 0 || p->copy == NULL)
		return put_metric(p, m, mid, ord);
	b_int(p->copy, 1, p->ckpt_id, &brc);
	b_int(p->copy, 2, mid, &brc);
	b_u64(p->copy, 3, ord, &brc);
	b_real(p->copy, 4, m->seconds, &brc);
	b_int(p->copy, 5, m->from_run, &brc);
	b_int(p->copy, 6, m->from_step, &brc);
	b_int(p->copy, 7, m->from_ckpt, &brc);
	b_int(p->copy, 8, m->from_matrix, &brc);
	rc = brc != SQLITE_OK ? bind_fail(p->s, brc, p->op, p->eb) :
	    step(p->s, p->copy, NULL, p->op, p->eb);
	sqlite3_reset(p->copy);
	if (rc == SPD_OK && sqlite3_changes(p->s->db) == 0)
		rc = put_metric(p, m, mid, ord);
	else if (rc == SPD_OK)
		rc = put_ht_fill(p, m, mid);
	return rc;
}

/* Stores every matrix of r with its metrics and spectrum. */
static enum spd_err
put_mats(struct put *p, const struct report *r)
{
	enum spd_err	rc;
	int64_t		mid = 0;
	size_t		i;

	rc = prep(p->s, Q_PUT_MATRIX, &p->mat, p->op, p->eb);
	if (rc == SPD_OK)
		rc = prep(p->s, Q_PUT_METRIC, &p->met, p->op, p->eb);
	if (rc == SPD_OK)
		rc = prep(p->s, Q_PUT_SPECTRUM, &p->spec, p->op, p->eb);
	if (rc == SPD_OK && r->reused > 0)
		rc = put_copy_prep(p);
	for (i = 0; rc == SPD_OK && i < r->nmats; i++) {
		rc = put_matrix(p, &r->mats[i], &mid);
		if (rc == SPD_OK)
			rc = put_reused(p, &r->mats[i], mid, i);
		if (rc == SPD_OK)
			rc = put_spectrum(p, &r->mats[i], mid);
	}
	return rc;
}

/* Marks the checkpoint done with the report's timings and backend. */
static enum spd_err
put_done(struct put *p, const struct report *r)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	int		 brc = SQLITE_OK;

	rc = prep(p->s, Q_PUT_DONE, &st, p->op, p->eb);
	if (rc != SPD_OK)
		return rc;
	b_int(st, 1, p->ckpt_id, &brc);
	b_text(st, 2, r->backend, &brc);
	b_real(st, 3, isfinite(r->seconds) ? r->seconds : 0, &brc);
	b_u64(st, 4, r->bytes, &brc);
	b_real(st, 5, wall_now(), &brc);
	b_u64(st, 6, r->nmats, &brc);
	b_u64(st, 7, r->reused, &brc);
	rc = brc != SQLITE_OK ? bind_fail(p->s, brc, p->op, p->eb) :
	    step(p->s, st, NULL, p->op, p->eb);
	release(p->s, st);
	return rc;
}

/* The highest version given so far for sel's run and key (0: none). */
static enum spd_err
sel_base(struct put *p, const struct selection *sel, long long *base)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	bool		 row = false;
	int		 brc = SQLITE_OK;

	if ((rc = prep(p->s, Q_SEL_BASE, &st, p->op, p->eb)) != SPD_OK)
		return rc;
	b_int(st, 1, p->run_id, &brc);
	b_int(st, 2, sel->top_percent, &brc);
	b_int(st, 3, sel->with_embeddings, &brc);
	rc = brc != SQLITE_OK ? bind_fail(p->s, brc, p->op, p->eb) :
	    step(p->s, st, &row, p->op, p->eb);
	*base = rc == SPD_OK && row ? sqlite3_column_int64(st, 0) : 0;
	release(p->s, st);
	return rc;
}

/*
 * The version of sel_mods for checkpoint p->ckpt_id by selection_version()
 * (select.h: the one rule), against the served selection of the run.
 */
static enum spd_err
sel_version(struct put *p, const struct selection *sel, const char *mods,
    long long *version, bool *changed)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	bool		 row = false, older;
	int		 brc = SQLITE_OK;
	long long	 base = 0;

	rc = prep(p->s, Q_SEL_PREV, &st, p->op, p->eb);
	if (rc != SPD_OK)
		return rc;
	b_int(st, 1, p->run_id, &brc);
	b_int(st, 2, sel->top_percent, &brc);
	b_int(st, 3, sel->with_embeddings, &brc);
	b_int(st, 4, p->ckpt_id, &brc);
	rc = brc != SQLITE_OK ? bind_fail(p->s, brc, p->op, p->eb) :
	    step(p->s, st, &row, p->op, p->eb);
	if (rc == SPD_OK && !row) {
		release(p->s, st);
		st = NULL;
		if ((rc = sel_base(p, sel, &base)) == SPD_OK)
			*version = selection_version(NULL, 0, base, false,
			    mods, changed);
	} else if (rc == SPD_OK) {
		older = sqlite3_column_int64(st, 4) < sqlite3_column_int64(st, 3);
		*version = selection_version(col_text(st, 1) != NULL ?
		    col_text(st, 1) : "", sqlite3_column_int64(st, 0),
		    sqlite3_column_int64(st, 2), older, mods, changed);
	}
	release(p->s, st);
	return rc;
}

/* Inserts one member row of selection id. */
static enum spd_err
put_member(struct put *p, sqlite3_stmt *st, int64_t id, int64_t ord,
    const char *type, size_t n, size_t rank, const char *module)
{
	int brc = SQLITE_OK;

	sqlite3_reset(st);
	b_int(st, 1, id, &brc);
	b_int(st, 2, ord, &brc);
	b_text(st, 3, type, &brc);
	b_u64(st, 4, n, &brc);
	b_u64(st, 5, rank, &brc);
	b_text(st, 6, module, &brc);
	return brc != SQLITE_OK ? bind_fail(p->s, brc, p->op, p->eb) :
	    step(p->s, st, NULL, p->op, p->eb);
}

/*
 * Inserts the members of sel as selection id: the embeddings, then each
 * type with its selected modules by rank (a type with none: one row).
 */
static enum spd_err
put_members(struct put *p, int64_t id, const struct selection *sel)
{
	const struct sel_type	*t;
	sqlite3_stmt		*st = NULL;
	enum spd_err		 rc;
	int64_t			 ord = 0;
	size_t			 i, j;

	if ((rc = prep(p->s, Q_SEL_MEMBER, &st, p->op, p->eb)) != SPD_OK)
		return rc;
	for (i = 0; rc == SPD_OK && i < sel->nembed; i++)
		rc = put_member(p, st, id, ord++, NULL, 0, i + 1,
		    sel->embeddings[i]);
	for (i = 0; rc == SPD_OK && i < sel->ntypes; i++) {
		t = &sel->types[i];
		if (t->nsel == 0)
			rc = put_member(p, st, id, ord++, t->type, t->n, 0,
			    NULL);
		for (j = 0; rc == SPD_OK && j < t->nsel; j++)
			rc = put_member(p, st, id, ord++, t->type, t->n, j + 1,
			    t->modules[j]);
	}
	release(p->s, st);
	return rc;
}

/* Stores sel as the selection of checkpoint p->ckpt_id, with its version. */
static enum spd_err
put_selection(struct put *p, const struct selection *sel,
    long long *version, bool *changed)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	int		 brc = SQLITE_OK;
	char		*mods;

	if ((mods = selection_modules(sel)) == NULL)
		return spd_fail(p->eb, SPD_ENOMEM, "store: %s: out of memory",
		    p->op);
	rc = sel_version(p, sel, mods, version, changed);
	if (rc == SPD_OK && (rc = prep(p->s, Q_SEL_DEL, &st, p->op, p->eb)) ==
	    SPD_OK) {
		b_int(st, 1, p->ckpt_id, &brc);
		b_int(st, 2, sel->top_percent, &brc);
		b_int(st, 3, sel->with_embeddings, &brc);
		rc = brc != SQLITE_OK ? bind_fail(p->s, brc, p->op, p->eb) :
		    step(p->s, st, NULL, p->op, p->eb);
		release(p->s, st);
		st = NULL;
	}
	if (rc == SPD_OK)
		rc = prep(p->s, Q_SEL_PUT, &st, p->op, p->eb);
	if (rc != SPD_OK)
		goto out;
	b_int(st, 1, p->run_id, &brc);
	b_int(st, 2, p->ckpt_id, &brc);
	b_int(st, 3, sel->top_percent, &brc);
	b_int(st, 4, sel->with_embeddings, &brc);
	b_int(st, 5, *version, &brc);
	b_text(st, 6, mods, &brc);
	b_real(st, 7, wall_now(), &brc);
	rc = brc != SQLITE_OK ? bind_fail(p->s, brc, p->op, p->eb) :
	    step(p->s, st, NULL, p->op, p->eb);
	if (rc == SPD_OK)
		rc = put_members(p, sqlite3_last_insert_rowid(p->s->db), sel);
out:
	release(p->s, st);
	free(mods);
	return rc;
}

/* Everything store_put_report writes, inside its transaction. */
static enum spd_err
put_all(struct put *p, const struct report *r, const struct selection *sel,
    long long *version, bool *changed)
{
	enum spd_err rc;

	rc = put_run(p);
	if (rc == SPD_OK)
		rc = put_exec_ckpt(p, Q_PUT_DEL_SPECTRA);
	if (rc == SPD_OK)
		rc = put_exec_ckpt(p, Q_PUT_DEL_METRICS);
	if (rc == SPD_OK)
		rc = put_mats(p, r);
	if (rc == SPD_OK)
		rc = put_done(p, r);
	if (rc == SPD_OK)
		rc = put_selection(p, sel, version, changed);
	return rc;
}

/* Stores a whole analysis in one transaction (see store.h). */
enum spd_err
store_put_report(struct store *s, int64_t ckpt_id, const struct report *r,
    const struct selection *sel, long long *version, bool *changed,
    struct spd_errbuf *eb)
{
	struct put	 p = { .s = s, .eb = eb, .ckpt_id = ckpt_id,
	    .method = r != NULL ? r->method : NULL };
	char		 op[96];
	enum spd_err	 rc;
	long long	 v = 0;
	bool		 ch = false;

	snprintf(op, sizeof op, "put report for checkpoint %" PRId64, ckpt_id);
	p.op = op;
	rc = need_rw(s, op, eb);
	if (rc == SPD_OK && (r == NULL || sel == NULL || sel->top_percent < 1 ||
	    sel->top_percent > 100))
		rc = spd_fail(eb, SPD_EINVAL, "store: %s: bad arguments", op);
	if (rc == SPD_OK)
		rc = tx_begin(s, op, eb);
	if (rc != SPD_OK)
		return rc;
	rc = put_all(&p, r, sel, &v, &ch);
	release(s, p.mat);
	release(s, p.met);
	release(s, p.spec);
	sqlite3_finalize(p.copy);
	free(p.buf);
	if (rc == SPD_OK)
		rc = tx_commit(s, op, eb);
	if (rc != SPD_OK) {
		tx_rollback(s);
		return rc;
	}
	if (version != NULL)
		*version = v;
	if (changed != NULL)
		*changed = ch;
	return SPD_OK;
}

/* --- reading ------------------------------------------------------------ */

/* Called for each row of query_rows(); anything but SPD_OK stops. */
typedef enum spd_err (*row_fn)(struct store *, sqlite3_stmt *, void *,
		    const char *, struct spd_errbuf *);

/*
 * Runs statement q with the integers v[0..n-1] bound to ?1..?n, calling fn
 * for each row (the statement stays on it during the call).
 */
static enum spd_err
query_rows(struct store *s, enum q q, const int64_t *v, size_t n, row_fn fn,
    void *arg, const char *op, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	bool		 more = true;
	int		 brc = SQLITE_OK;
	size_t		 i;

	rc = need_open(s, op, eb);
	if (rc == SPD_OK)
		rc = prep(s, q, &st, op, eb);
	if (rc != SPD_OK)
		return rc;
	for (i = 0; i < n; i++)
		b_int(st, (int)i + 1, v[i], &brc);
	if (brc != SQLITE_OK)
		rc = bind_fail(s, brc, op, eb);
	while (rc == SPD_OK && (rc = step(s, st, &more, op, eb)) == SPD_OK &&
	    more)
		rc = fn(s, st, arg, op, eb);
	release(s, st);
	return rc;
}


/* Fills the status counts of run row->id. */
static enum spd_err
run_counts(struct store *s, sqlite3_stmt *st, struct run_row *row,
    const char *op, struct spd_errbuf *eb)
{
	enum ckpt_status cs;
	enum spd_err	 rc;
	bool		 more = true;
	int		 brc = SQLITE_OK;

	memset(row->counts, 0, sizeof row->counts);
	sqlite3_reset(st);
	b_int(st, 1, row->id, &brc);
	if (brc != SQLITE_OK)
		return bind_fail(s, brc, op, eb);
	for (;;) {
		rc = step(s, st, &more, op, eb);
		if (rc != SPD_OK || !more)
			return rc;
		if (ckpt_status_parse(col_text(st, 0), &cs) != SPD_OK)
			return spd_fail(eb, SPD_EFORMAT,
			    "store: %s: bad checkpoint status", op);
		row->counts[cs] = col_u64(st, 1);
	}
}

/* Calls cb for every run, ordered by name. */
enum spd_err
store_runs(struct store *s, store_run_cb cb, void *arg,
    struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL, *cst = NULL;
	const char	*op = "list runs";
	struct run_row	 row;
	enum spd_err	 rc;
	bool		 more = true;

	rc = need_open(s, op, eb);
	if (rc == SPD_OK)
		rc = prep(s, Q_RUNS, &st, op, eb);
	if (rc == SPD_OK)
		rc = prep(s, Q_RUN_COUNTS, &cst, op, eb);
	while (rc == SPD_OK) {
		rc = step(s, st, &more, op, eb);
		if (rc != SPD_OK || !more)
			break;
		row.id = sqlite3_column_int64(st, 0);
		row.name = col_text(st, 1);
		row.dir = col_text(st, 2);
		row.latest_step = sqlite3_column_int64(st, 3);
		rc = run_counts(s, cst, &row, op, eb);
		if (rc == SPD_OK)
			rc = cb_result(cb(arg, &row), op, eb);
	}
	release(s, cst);
	release(s, st);
	return rc;
}

/* Looks a run up by name. */
enum spd_err
store_run_find(struct store *s, const char *name, int64_t *run_id,
    struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	char		 op[160];
	enum spd_err	 rc;
	bool		 row = false;
	int		 brc = SQLITE_OK;

	snprintf(op, sizeof op, "run %s", name != NULL ? name : "(null)");
	rc = need_open(s, op, eb);
	if (rc == SPD_OK && (name == NULL || run_id == NULL))
		rc = spd_fail(eb, SPD_EINVAL, "store: %s: bad arguments", op);
	if (rc == SPD_OK)
		rc = prep(s, Q_RUN_FIND, &st, op, eb);
	if (rc != SPD_OK)
		goto out;
	b_text(st, 1, name, &brc);
	rc = brc != SQLITE_OK ? bind_fail(s, brc, op, eb) :
	    step(s, st, &row, op, eb);
	if (rc == SPD_OK && !row)
		rc = spd_fail(eb, SPD_ENOTFOUND, "store: %s: no such run", op);
	if (rc == SPD_OK)
		*run_id = sqlite3_column_int64(st, 0);
out:
	release(s, st);
	return rc;
}

/* Fills a checkpoint row from the CKPT_COLS of st. */
static enum spd_err
ckpt_fill(sqlite3_stmt *st, struct ckpt_row *c, const char *op,
    struct spd_errbuf *eb)
{
	if (ckpt_status_parse(col_text(st, 4), &c->status) != SPD_OK)
		return spd_fail(eb, SPD_EFORMAT,
		    "store: %s: bad checkpoint status", op);
	c->id = sqlite3_column_int64(st, 0);
	c->run_id = sqlite3_column_int64(st, 1);
	c->step = sqlite3_column_int64(st, 2);
	c->path = col_text(st, 3);
	c->error = col_text(st, 5);
	c->done = col_u64(st, 6);
	c->total = col_u64(st, 7);
	c->wall_time = sqlite3_column_double(st, 8);
	c->started = sqlite3_column_double(st, 9);
	c->finished = sqlite3_column_double(st, 10);
	c->seconds = sqlite3_column_double(st, 11);
	c->bytes = col_u64(st, 12);
	c->backend = col_text(st, 13);
	c->incomplete_since = sqlite3_column_double(st, 14);
	c->nonfinite = col_u64(st, 15);
	c->reused = col_u64(st, 16);
	return SPD_OK;
}

/* Walks the rows of a bound checkpoint query; *n counts them. */
static enum spd_err
ckpt_walk(struct store *s, sqlite3_stmt *st, store_ckpt_cb cb, void *arg,
    size_t *n, const char *op, struct spd_errbuf *eb)
{
	struct ckpt_row	row;
	enum spd_err	rc;
	bool		more = true;

	*n = 0;
	for (;;) {
		rc = step(s, st, &more, op, eb);
		if (rc != SPD_OK || !more)
			return rc;
		rc = ckpt_fill(st, &row, op, eb);
		if (rc == SPD_OK)
			rc = cb_result(cb(arg, &row), op, eb);
		if (rc != SPD_OK)
			return rc;
		(*n)++;
	}
}

/* Calls cb for every checkpoint of a run in step order. */
enum spd_err
store_ckpts(struct store *s, int64_t run_id, store_ckpt_cb cb, void *arg,
    struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	char		 op[96];
	enum spd_err	 rc;
	size_t		 n;
	int		 brc = SQLITE_OK;

	snprintf(op, sizeof op, "checkpoints of run %" PRId64, run_id);
	rc = need_open(s, op, eb);
	if (rc == SPD_OK)
		rc = prep(s, Q_CKPTS, &st, op, eb);
	if (rc != SPD_OK)
		goto out;
	b_int(st, 1, run_id, &brc);
	rc = brc != SQLITE_OK ? bind_fail(s, brc, op, eb) :
	    ckpt_walk(s, st, cb, arg, &n, op, eb);
out:
	release(s, st);
	return rc;
}

/* Calls cb for one checkpoint of a run by step (< 0: the latest done). */
enum spd_err
store_ckpt_get(struct store *s, int64_t run_id, long long step_no,
    store_ckpt_cb cb, void *arg, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	char		 op[96];
	enum spd_err	 rc;
	size_t		 n = 0;
	int		 brc = SQLITE_OK;

	if (step_no < 0)
		snprintf(op, sizeof op, "latest checkpoint of run %" PRId64,
		    run_id);
	else
		snprintf(op, sizeof op, "checkpoint at step %lld of run %"
		    PRId64, step_no, run_id);
	rc = need_open(s, op, eb);
	if (rc == SPD_OK)
		rc = prep(s, step_no < 0 ? Q_CKPT_LATEST : Q_CKPT_STEP, &st,
		    op, eb);
	if (rc != SPD_OK)
		goto out;
	b_int(st, 1, run_id, &brc);
	if (step_no >= 0)
		b_int(st, 2, step_no, &brc);
	rc = brc != SQLITE_OK ? bind_fail(s, brc, op, eb) :
	    ckpt_walk(s, st, cb, arg, &n, op, eb);
	if (rc == SPD_OK && n == 0)
		rc = spd_fail(eb, SPD_ENOTFOUND, "store: %s: not found", op);
out:
	release(s, st);
	return rc;
}

/* A metric row and what store_metrics() does not show of it. */
typedef int	(*metric_full_cb)(void *arg, const struct metric_row *,
		    int embedding);

/* Walks the Q_METRICS rows of a checkpoint. */
static enum spd_err
metrics_walk(struct store *s, int64_t ckpt_id, metric_full_cb cb,
    void *arg, const char *op, struct spd_errbuf *eb)
{
	sqlite3_stmt		*st = NULL;
	struct metric_row	 row;
	enum spd_err		 rc;
	bool			 more = true;
	int			 brc = SQLITE_OK;

	rc = prep(s, Q_METRICS, &st, op, eb);
	if (rc != SPD_OK)
		return rc;
	b_int(st, 1, ckpt_id, &brc);
	if (brc != SQLITE_OK)
		rc = bind_fail(s, brc, op, eb);
	while (rc == SPD_OK) {
		rc = step(s, st, &more, op, eb);
		if (rc != SPD_OK || !more)
			break;
		row.name = col_text(st, 0);
		row.module = col_text(st, 1);
		row.type = col_text(st, 2);
		row.dtype = col_text(st, 3);
		row.layer = sqlite3_column_int(st, 4);
		row.rows = col_u64(st, 5);
		row.cols = col_u64(st, 6);
		row.status = col_text(st, 7);
		row.error = col_text(st, 8);
		row.seconds = col_real(st, 9);
		metric_fill(st, 11, &row.m);
		ht_fill(st, 21, &row.ht, &row.has_ht);
		rc = cb_result(cb(arg, &row, sqlite3_column_int(st, 10)), op,
		    eb);
	}
	release(s, st);
	return rc;
}

/* Adapts a store_metric_cb to metrics_walk(). */
struct metric_plain {
	store_metric_cb	 cb;
	void		*arg;
};

/* Calls the plain callback, dropping the extra columns. */
static int
metric_plain_cb(void *arg, const struct metric_row *row, int embedding)
{
	struct metric_plain *mp = arg;

	(void)embedding;
	return mp->cb(mp->arg, row);
}

/* Calls cb for every matrix of a checkpoint in checkpoint order. */
enum spd_err
store_metrics(struct store *s, int64_t ckpt_id, store_metric_cb cb,
    void *arg, struct spd_errbuf *eb)
{
	struct metric_plain	mp = { cb, arg };
	char			op[96];
	enum spd_err		rc;

	snprintf(op, sizeof op, "metrics of checkpoint %" PRId64, ckpt_id);
	rc = need_open(s, op, eb);
	if (rc == SPD_OK)
		rc = metrics_walk(s, ckpt_id, metric_plain_cb, &mp, op, eb);
	return rc;
}

/* Prepares the history query of one metric; EINVAL when unknown. */
static enum spd_err
hist_prep(struct store *s, const char *metric, sqlite3_stmt **st,
    const char *op, struct spd_errbuf *eb)
{
	char	text[1024];
	size_t	i;

	for (i = 0; i < nitems(hist_metrics); i++)
		if (metric != NULL && strcmp(hist_metrics[i].name, metric) == 0)
			break;
	if (i == nitems(hist_metrics))
		return spd_fail(eb, SPD_EINVAL, "store: %s: unknown metric",
		    op);
	snprintf(text, sizeof text, HIST_SQL, hist_metrics[i].col,
	    hist_metrics[i].cls, hist_metrics[i].where);
	return prep_sql(s, text, st, op, eb);
}

/* Calls cb for every point of one metric's history (see store.h). */
enum spd_err
store_history(struct store *s, int64_t run_id, const char *type,
    const char *metric, store_hist_cb cb, void *arg, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	struct hist_row	 row;
	char		 op[128];
	enum spd_err	 rc;
	bool		 more = true;
	int		 brc = SQLITE_OK;

	snprintf(op, sizeof op, "history of %s in run %" PRId64,
	    metric != NULL ? metric : "(null)", run_id);
	rc = need_open(s, op, eb);
	if (rc == SPD_OK)
		rc = hist_prep(s, metric, &st, op, eb);
	if (rc != SPD_OK)
		goto out;
	b_int(st, 1, run_id, &brc);
	b_text(st, 2, type, &brc);
	if (brc != SQLITE_OK)
		rc = bind_fail(s, brc, op, eb);
	while (rc == SPD_OK) {
		rc = step(s, st, &more, op, eb);
		if (rc != SPD_OK || !more)
			break;
		row.module = col_text(st, 0);
		row.type = col_text(st, 1);
		row.layer = sqlite3_column_int(st, 2);
		row.step = sqlite3_column_int64(st, 3);
		row.wall_time = sqlite3_column_double(st, 4);
		row.value = col_classed(st, 5, 6);
		rc = cb_result(cb(arg, &row), op, eb);
	}
out:
	release(s, st);
	return rc;
}

/* Stores n training-log numbers of a run in one transaction. */
enum spd_err
store_train_put(struct store *s, int64_t run_id, long long source,
    const struct train_point *v, size_t n, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	char		 op[96];
	enum spd_err	 rc;
	size_t		 i;
	int		 brc = SQLITE_OK;

	snprintf(op, sizeof op, "put training log of run %" PRId64, run_id);
	rc = need_rw(s, op, eb);
	if (rc == SPD_OK && v == NULL && n > 0)
		rc = spd_fail(eb, SPD_EINVAL, "store: %s: bad arguments", op);
	if (rc != SPD_OK || n == 0)
		return rc;
	for (i = 0; i < n; i++)
		if (!spd_train_name_ok(v[i].name) || !isfinite(v[i].value) ||
		    v[i].step < 0)
			return spd_fail(eb, SPD_EINVAL, "store: %s: bad point "
			    "%zu", op, i);
	if ((rc = tx_begin(s, op, eb)) != SPD_OK)
		return rc;
	rc = prep(s, Q_TRAIN_PUT, &st, op, eb);
	for (i = 0; rc == SPD_OK && i < n; i++) {
		b_int(st, 1, run_id, &brc);
		b_int(st, 2, v[i].step, &brc);
		b_text(st, 3, v[i].name, &brc);
		b_real(st, 4, v[i].value, &brc);
		b_int(st, 5, source, &brc);
		rc = brc != SQLITE_OK ? bind_fail(s, brc, op, eb) :
		    step(s, st, NULL, op, eb);
		sqlite3_reset(st);
	}
	release(s, st);
	if (rc == SPD_OK)
		rc = tx_commit(s, op, eb);
	if (rc != SPD_OK)
		tx_rollback(s);
	return rc;
}

/* Calls cb for each point of one training-log series (see store.h). */
enum spd_err
store_train_log(struct store *s, int64_t run_id, const char *name,
    store_hist_cb cb, void *arg, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	struct hist_row	 row = { .type = "train_log", .layer = -1,
	    .wall_time = NAN };
	char		 op[160];
	enum spd_err	 rc;
	bool		 more = true;
	int		 brc = SQLITE_OK;

	snprintf(op, sizeof op, "training log %s of run %" PRId64,
	    name != NULL ? name : "(null)", run_id);
	rc = need_open(s, op, eb);
	if (rc == SPD_OK && !spd_train_name_ok(name))
		rc = spd_fail(eb, SPD_EINVAL, "store: %s: bad name", op);
	if (rc == SPD_OK)
		rc = prep(s, Q_TRAIN_GET, &st, op, eb);
	if (rc != SPD_OK)
		goto out;
	row.module = name;
	b_int(st, 1, run_id, &brc);
	b_text(st, 2, name, &brc);
	if (brc != SQLITE_OK)
		rc = bind_fail(s, brc, op, eb);
	while (rc == SPD_OK) {
		rc = step(s, st, &more, op, eb);
		if (rc != SPD_OK || !more)
			break;
		row.step = sqlite3_column_int64(st, 0);
		row.value = col_real(st, 1);
		rc = cb_result(cb(arg, &row), op, eb);
	}
out:
	release(s, st);
	return rc;
}

/* Calls cb for each metric name of a run's training log (see store.h). */
enum spd_err
store_train_names(struct store *s, int64_t run_id, store_train_cb cb,
    void *arg, struct spd_errbuf *eb)
{
	sqlite3_stmt		*st = NULL;
	struct train_name_row	 row;
	char			 op[96];
	enum spd_err		 rc;
	bool			 more = true;
	int			 brc = SQLITE_OK;

	snprintf(op, sizeof op, "training log names of run %" PRId64, run_id);
	rc = need_open(s, op, eb);
	if (rc == SPD_OK)
		rc = prep(s, Q_TRAIN_NAMES, &st, op, eb);
	if (rc != SPD_OK)
		goto out;
	b_int(st, 1, run_id, &brc);
	if (brc != SQLITE_OK)
		rc = bind_fail(s, brc, op, eb);
	while (rc == SPD_OK) {
		rc = step(s, st, &more, op, eb);
		if (rc != SPD_OK || !more)
			break;
		row.name = col_text(st, 0);
		row.points = (uint64_t)sqlite3_column_int64(st, 1);
		row.first_step = sqlite3_column_int64(st, 2);
		row.last_step = sqlite3_column_int64(st, 3);
		rc = cb_result(row.name == NULL ? 0 : cb(arg, &row), op, eb);
	}
out:
	release(s, st);
	return rc;
}

/* Copies out the k values of a validated spectrum BLOB. */
static enum spd_err
spectrum_copy(sqlite3_stmt *st, float **sv, size_t *k, const char *op,
    struct spd_errbuf *eb)
{
	const void	*blob = sqlite3_column_blob(st, 1);
	int64_t		 n = sqlite3_column_int64(st, 0);
	size_t		 len = (size_t)sqlite3_column_bytes(st, 1);
	float		*out;

	if (n <= 0 || blob == NULL || (uint64_t)n > SIZE_MAX / 4 ||
	    len != (size_t)n * 4)
		return spd_fail(eb, SPD_EFORMAT, "store: %s: spectrum of %"
		    PRId64 " values has %zu bytes", op, n, len);
	out = malloc(len);
	if (out == NULL)
		return spd_fail(eb, SPD_ENOMEM, "store: %s: out of memory", op);
	sv_decode(blob, (size_t)n, out);
	*sv = out;
	*k = (size_t)n;
	return SPD_OK;
}

/*
 * Fills r from a Q_REUSE_FIND row: the spectrum when want_spectrum, or
 * when the row has no heavy-tail metrics (the caller fits it).
 */
static enum spd_err
reuse_fill(sqlite3_stmt *st, bool want_spectrum, struct mat_result *r,
    const char *op, struct spd_errbuf *eb)
{
	enum spd_err rc = SPD_OK;

	ht_fill(st, 16, &r->ht, &r->has_ht);
	if (want_spectrum || !r->has_ht)
		rc = spectrum_copy(st, &r->spectrum, &r->k, op, eb);
	if (rc != SPD_OK)
		return rc;
	r->from_ckpt = sqlite3_column_int64(st, 2);
	r->from_matrix = sqlite3_column_int64(st, 3);
	r->from_run = sqlite3_column_int64(st, 4);
	r->from_step = sqlite3_column_int64(st, 5);
	metric_fill(st, 6, &r->m);
	return SPD_OK;
}

/* Looks a result up by fingerprint and method (see store.h). */
enum spd_err
store_reuse_find(struct store *s, const char *method, int64_t exclude,
    bool want_spectrum, struct mat_result *r, bool *found,
    struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	const char	*op = "reuse lookup";
	enum spd_err	 rc;
	bool		 row = false;
	int		 brc = SQLITE_OK;

	*found = false;
	if ((rc = need_open(s, op, eb)) != SPD_OK)
		return rc;
	if (!r->has_fp || method == NULL)
		return SPD_OK;
	if ((rc = prep(s, Q_REUSE_FIND, &st, op, eb)) != SPD_OK)
		return rc;
	brc = sqlite3_bind_blob(st, 1, r->fp, FINGERPRINT_LEN, SQLITE_STATIC);
	b_text(st, 2, method, &brc);
	b_int(st, 3, exclude, &brc);
	b_int(st, 4, want_spectrum, &brc);
	rc = brc != SQLITE_OK ? bind_fail(s, brc, op, eb) :
	    step(s, st, &row, op, eb);
	if (rc == SPD_OK && row) {
		rc = reuse_fill(st, want_spectrum, r, op, eb);
		*found = rc == SPD_OK;
	}
	release(s, st);
	return rc;
}

/* Returns the stored spectrum of one matrix of a checkpoint. */
enum spd_err
store_spectrum(struct store *s, int64_t ckpt_id, const char *matrix,
    float **sv, size_t *k, struct snr_result *m, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	char		 op[192];
	enum spd_err	 rc;
	bool		 row = false;
	int		 brc = SQLITE_OK;

	snprintf(op, sizeof op, "spectrum of %s in checkpoint %" PRId64,
	    matrix != NULL ? matrix : "(null)", ckpt_id);
	rc = need_open(s, op, eb);
	if (rc == SPD_OK && (matrix == NULL || sv == NULL || k == NULL))
		rc = spd_fail(eb, SPD_EINVAL, "store: %s: bad arguments", op);
	if (rc == SPD_OK)
		rc = prep(s, Q_SPECTRUM, &st, op, eb);
	if (rc != SPD_OK)
		goto out;
	b_int(st, 1, ckpt_id, &brc);
	b_text(st, 2, matrix, &brc);
	rc = brc != SQLITE_OK ? bind_fail(s, brc, op, eb) :
	    step(s, st, &row, op, eb);
	if (rc == SPD_OK && !row)
		rc = spd_fail(eb, SPD_ENOTFOUND, "store: %s: not stored", op);
	if (rc == SPD_OK)
		rc = spectrum_copy(st, sv, k, op, eb);
	if (rc == SPD_OK && m != NULL)
		metric_fill(st, 2, m);
out:
	release(s, st);
	return rc;
}

/* Rebuilds selection id's facts into *out (a new selection). */
static enum spd_err
sel_load(struct store *s, int64_t id, unsigned top, bool emb,
    struct selection **out, const char *op, struct spd_errbuf *eb)
{
	struct selection	*sel;
	sqlite3_stmt		*st = NULL;
	const char		*type, *mod, *last = NULL;
	enum spd_err		 rc;
	bool			 more = true;
	int			 brc = SQLITE_OK;
	char			*lastbuf = NULL;

	if ((sel = selection_new(top, emb)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "store: %s: out of memory", op);
	rc = prep(s, Q_SEL_MEMBERS, &st, op, eb);
	if (rc == SPD_OK) {
		b_int(st, 1, id, &brc);
		if (brc != SQLITE_OK)
			rc = bind_fail(s, brc, op, eb);
	}
	while (rc == SPD_OK && (rc = step(s, st, &more, op, eb)) == SPD_OK &&
	    more) {
		type = col_text(st, 0);
		mod = col_text(st, 2);
		if (type == NULL && mod != NULL)
			rc = selection_add_embedding(sel, mod);
		else if (type != NULL && (last == NULL ||
		    strcmp(last, type) != 0)) {
			free(lastbuf);
			last = lastbuf = strdup(type);
			rc = last == NULL ? SPD_ENOMEM :
			    selection_add_type(sel, type, col_u64(st, 1));
		}
		if (rc == SPD_OK && type != NULL && mod != NULL)
			rc = selection_add_member(sel, mod);
		if (rc != SPD_OK && rc != SPD_ENOMEM)
			rc = spd_fail(eb, SPD_EFORMAT, "store: %s: selection "
			    "%" PRId64 " has inconsistent members", op, id);
		else if (rc == SPD_ENOMEM)
			rc = spd_fail(eb, rc, "store: %s: out of memory", op);
	}
	free(lastbuf);
	release(s, st);
	if (rc != SPD_OK) {
		selection_free(sel);
		return rc;
	}
	*out = sel;
	return SPD_OK;
}

/*
 * Steps Q_SEL_LATEST for the served selection of a run (the row of its
 * highest step): *st on that row (the caller releases it), or ENOTFOUND.
 */
static enum spd_err
sel_latest(struct store *s, int64_t run_id, unsigned top, bool emb,
    sqlite3_stmt **st, const char *op, struct spd_errbuf *eb)
{
	enum spd_err	rc;
	bool		row = false;
	int		brc = SQLITE_OK;

	*st = NULL;
	rc = need_open(s, op, eb);
	if (rc == SPD_OK)
		rc = prep(s, Q_SEL_LATEST, st, op, eb);
	if (rc != SPD_OK)
		return rc;
	b_int(*st, 1, run_id, &brc);
	b_int(*st, 2, top, &brc);
	b_int(*st, 3, emb, &brc);
	rc = brc != SQLITE_OK ? bind_fail(s, brc, op, eb) :
	    step(s, *st, &row, op, eb);
	if (rc == SPD_OK && !row)
		rc = spd_fail(eb, SPD_ENOTFOUND, "store: %s: none yet", op);
	return rc;
}

/* Returns the served selection of a run, rebuilt from its facts. */
enum spd_err
store_selection_latest(struct store *s, int64_t run_id,
    unsigned top_percent, bool include_embeddings, struct selection **sel,
    long long *version, long long *step_no, char **path,
    struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	char		 op[96], *p = NULL;
	enum spd_err	 rc;

	snprintf(op, sizeof op, "selection of run %" PRId64 " at %u%%%s",
	    run_id, top_percent, include_embeddings ? "" : " (no embeddings)");
	rc = sel_latest(s, run_id, top_percent, include_embeddings, &st, op,
	    eb);
	if (rc == SPD_OK && path != NULL && (p = strdup(col_text(st, 3) !=
	    NULL ? col_text(st, 3) : "")) == NULL)
		rc = spd_fail(eb, SPD_ENOMEM, "store: %s: out of memory", op);
	if (rc != SPD_OK)
		goto out;
	if (version != NULL)
		*version = sqlite3_column_int64(st, 1);
	if (step_no != NULL)
		*step_no = sqlite3_column_int64(st, 2);
	if (sel != NULL)
		rc = sel_load(s, sqlite3_column_int64(st, 0), top_percent,
		    include_embeddings, sel, op, eb);
	if (rc == SPD_OK && path != NULL) {
		*path = p;
		p = NULL;
	}
out:
	free(p);
	release(s, st);
	return rc;
}

/* Names the served selection's row (see store.h). */
enum spd_err
store_selection_row(struct store *s, int64_t run_id, unsigned top_percent,
    bool include_embeddings, int64_t *id, double *created,
    struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	char		 op[96];
	enum spd_err	 rc;

	snprintf(op, sizeof op, "selection row of run %" PRId64, run_id);
	rc = sel_latest(s, run_id, top_percent, include_embeddings, &st, op,
	    eb);
	if (rc == SPD_OK) {
		*id = sqlite3_column_int64(st, 0);
		*created = sqlite3_column_double(st, 4);
	}
	release(s, st);
	return rc;
}

/* Keeps column 0 of a row as an integer (query_rows() callback). */
static enum spd_err
int_row(struct store *s, sqlite3_stmt *st, void *arg, const char *op,
    struct spd_errbuf *eb)
{
	(void)s;
	(void)op;
	(void)eb;
	*(int64_t *)arg = sqlite3_column_int64(st, 0);
	return SPD_OK;
}

/* The stored selection of one checkpoint (see store.h). */
enum spd_err
store_selection_at(struct store *s, int64_t ckpt_id, unsigned top_percent,
    bool include_embeddings, struct selection **sel, struct spd_errbuf *eb)
{
	int64_t		v[3] = { ckpt_id, top_percent, include_embeddings };
	int64_t		id = 0;
	char		op[96];
	enum spd_err	rc;

	snprintf(op, sizeof op, "selection of checkpoint %" PRId64 " at %u%%%s",
	    ckpt_id, top_percent, include_embeddings ? "" :
	    " (no embeddings)");
	rc = query_rows(s, Q_SEL_AT, v, 3, int_row, &id, op, eb);
	if (rc == SPD_OK && id == 0)
		rc = spd_fail(eb, SPD_ENOTFOUND, "store: %s: none stored", op);
	if (rc == SPD_OK)
		rc = sel_load(s, id, top_percent, include_embeddings, sel, op,
		    eb);
	return rc;
}

/* The churn between the run's last two served selections. */
enum spd_err
store_selection_churn(struct store *s, int64_t run_id, unsigned top_percent,
    bool include_embeddings, size_t *churn, struct spd_errbuf *eb)
{
	sqlite3_stmt		*st = NULL;
	struct selection	*a = NULL, *b = NULL;
	char			 op[96];
	int64_t			 id[2];
	size_t			 n = 0;
	enum spd_err		 rc;
	bool			 row = true;
	int			 brc = SQLITE_OK;

	snprintf(op, sizeof op, "selection churn of run %" PRId64 " at %u%%%s",
	    run_id, top_percent, include_embeddings ? "" : " (no embeddings)");
	rc = need_open(s, op, eb);
	if (rc == SPD_OK)
		rc = prep(s, Q_SEL_LAST2, &st, op, eb);
	if (rc != SPD_OK)
		return rc;
	b_int(st, 1, run_id, &brc);
	b_int(st, 2, top_percent, &brc);
	b_int(st, 3, include_embeddings, &brc);
	if (brc != SQLITE_OK)
		rc = bind_fail(s, brc, op, eb);
	while (rc == SPD_OK && n < 2 && (rc = step(s, st, &row, op, eb)) ==
	    SPD_OK && row)
		id[n++] = sqlite3_column_int64(st, 0);
	release(s, st);
	if (rc == SPD_OK && n < 2)
		rc = spd_fail(eb, SPD_ENOTFOUND, "store: %s: fewer than two "
		    "selections", op);
	if (rc == SPD_OK)
		rc = sel_load(s, id[0], top_percent, include_embeddings, &a, op,
		    eb);
	if (rc == SPD_OK)
		rc = sel_load(s, id[1], top_percent, include_embeddings, &b, op,
		    eb);
	if (rc == SPD_OK && (rc = selection_churn(a, b, churn)) != SPD_OK)
		rc = spd_fail(eb, rc, "store: %s: out of memory", op);
	selection_free(a);
	selection_free(b);
	return rc;
}

/* The done checkpoints without a selection for (top, emb), in order. */
static enum spd_err
sel_missing(struct store *s, unsigned top, bool emb, int64_t **ids,
    size_t *n, const char *op, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	bool		 more = true;
	int		 brc = SQLITE_OK;
	int64_t		*v = NULL, *nv;
	size_t		 cap = 0;

	*n = 0;
	rc = prep(s, Q_SEL_MISSING, &st, op, eb);
	if (rc == SPD_OK) {
		b_int(st, 1, top, &brc);
		b_int(st, 2, emb, &brc);
		if (brc != SQLITE_OK)
			rc = bind_fail(s, brc, op, eb);
	}
	while (rc == SPD_OK && (rc = step(s, st, &more, op, eb)) == SPD_OK &&
	    more) {
		if (*n == cap) {
			cap = cap != 0 ? cap * 2 : 64;
			if ((nv = realloc(v, cap * sizeof *v)) == NULL) {
				rc = spd_fail(eb, SPD_ENOMEM, "store: %s: out "
				    "of memory", op);
				break;
			}
			v = nv;
		}
		v[(*n)++] = sqlite3_column_int64(st, 0);
	}
	release(s, st);
	if (rc != SPD_OK) {
		free(v);
		*n = 0;
		return rc;
	}
	*ids = v;
	return SPD_OK;
}

/*
 * The stored selection for (top, emb) of checkpoint id's run at the
 * highest step below id's: *out, or NULL when there is none.
 */
static enum spd_err
sel_before(struct store *s, int64_t id, unsigned top, bool emb,
    struct selection **out, const char *op, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	bool		 row = false;
	int		 brc = SQLITE_OK;
	int64_t		 sid = 0;

	*out = NULL;
	if ((rc = prep(s, Q_SEL_BEFORE, &st, op, eb)) != SPD_OK)
		return rc;
	b_int(st, 1, id, &brc);
	b_int(st, 2, top, &brc);
	b_int(st, 3, emb, &brc);
	rc = brc != SQLITE_OK ? bind_fail(s, brc, op, eb) :
	    step(s, st, &row, op, eb);
	if (rc == SPD_OK && row)
		sid = sqlite3_column_int64(st, 0);
	release(s, st);
	if (rc == SPD_OK && row)
		rc = sel_load(s, sid, top, emb, out, op, eb);
	return rc;
}

/*
 * Selects checkpoint id from its stored metrics, with hysteresis by
 * margin against the selection of the run's preceding step, and stores
 * the facts.
 */
static enum spd_err
sel_rebuild_one(struct store *s, int64_t id, unsigned top, bool emb,
    unsigned margin, const char *op, struct spd_errbuf *eb)
{
	struct put		 p = { .s = s, .eb = eb, .ckpt_id = id, .op = op };
	struct report		*r = NULL;
	struct selection	*sel = NULL, *prev = NULL;
	long long		 v;
	bool			 ch;
	enum spd_err		 rc;

	rc = store_load_report(s, id, &r, eb);
	if (rc == SPD_OK && margin > 0)
		rc = sel_before(s, id, top, emb, &prev, op, eb);
	if (rc == SPD_OK && (rc = select_compute_sticky(r, top, emb, prev,
	    margin, &sel)) != SPD_OK)
		rc = spd_fail(eb, rc, "store: %s: select: %s", op,
		    spd_strerror(rc));
	if (rc == SPD_OK)
		rc = put_run(&p);
	if (rc == SPD_OK)
		rc = put_selection(&p, sel, &v, &ch);
	selection_free(sel);
	selection_free(prev);
	report_free(r);
	return rc;
}

/* Stores the selections missing for (top, emb), from stored metrics. */
enum spd_err
store_selection_sync(struct store *s, unsigned top_percent,
    bool include_embeddings, unsigned stickiness, size_t *added,
    struct spd_errbuf *eb)
{
	char		 op[96];
	int64_t		*ids = NULL;
	size_t		 n = 0, i;
	enum spd_err	 rc;

	snprintf(op, sizeof op, "selections at %u%%%s from stored metrics",
	    top_percent, include_embeddings ? "" : " (no embeddings)");
	if (added != NULL)
		*added = 0;
	rc = need_rw(s, op, eb);
	if (rc == SPD_OK && (top_percent < 1 || top_percent > 100))
		rc = spd_fail(eb, SPD_EINVAL, "store: %s: bad arguments", op);
	if (rc == SPD_OK)
		rc = sel_missing(s, top_percent, include_embeddings, &ids, &n,
		    op, eb);
	if (rc != SPD_OK || n == 0)
		return rc;
	/* One transaction: rebuilt selections appear all at once. */
	if ((rc = tx_begin(s, op, eb)) == SPD_OK) {
		for (i = 0; rc == SPD_OK && i < n; i++)
			rc = sel_rebuild_one(s, ids[i], top_percent,
			    include_embeddings, stickiness, op, eb);
		if (rc == SPD_OK)
			rc = tx_commit(s, op, eb);
		if (rc != SPD_OK)
			tx_rollback(s);
	}
	free(ids);
	if (rc == SPD_OK && added != NULL)
		*added = n;
	return rc;
}

/* Creates the empty report of a done checkpoint. */
static enum spd_err
load_head(struct store *s, int64_t ckpt_id, struct report **out,
    const char *op, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	bool		 row = false;
	int		 brc = SQLITE_OK;
	const char	*status;

	rc = prep(s, Q_CKPT_ONE, &st, op, eb);
	if (rc != SPD_OK)
		return rc;
	b_int(st, 1, ckpt_id, &brc);
	rc = brc != SQLITE_OK ? bind_fail(s, brc, op, eb) :
	    step(s, st, &row, op, eb);
	status = row ? col_text(st, 1) : NULL;
	if (rc == SPD_OK && (status == NULL || strcmp(status, "done") != 0))
		rc = spd_fail(eb, SPD_ENOTFOUND, "store: %s: %s", op,
		    row ? "checkpoint not analysed" : "no such checkpoint");
	if (rc == SPD_OK) {
		*out = report_new(col_text(st, 0), col_text(st, 2));
		if (*out == NULL)
			rc = spd_fail(eb, SPD_ENOMEM,
			    "store: %s: out of memory", op);
	}
	if (rc == SPD_OK) {
		(*out)->bytes = col_u64(st, 3);
		(*out)->seconds = sqlite3_column_double(st, 4);
	}
	release(s, st);
	return rc;
}

/* What load_add() needs: the report being built, and why it stopped. */
struct load {
	struct report		*r;
	enum spd_err		 rc;
	const char		*op;
	struct spd_errbuf	 eb;
};

/* Duplicates a string, NULL staying NULL; false when out of memory. */
static bool
dup_opt(const char *src, char **dst)
{
	*dst = NULL;
	if (src == NULL)
		return true;
	*dst = strdup(src);
	return *dst != NULL;
}

/* Parses a stored mat_status name. */
static bool
mat_status_parse(const char *name, enum mat_status *out)
{
	enum mat_status st;

	for (st = MAT_OK; name != NULL && st <= MAT_SKIPPED; st++) {
		if (strcmp(mat_status_name(st), name) == 0) {
			*out = st;
			return true;
		}
	}
	return false;
}

/* Appends one stored metric row to the report being loaded. */
static int
load_add(void *arg, const struct metric_row *row, int embedding)
{
	struct load		*l = arg;
	struct mat_result	 m = { .layer = row->layer, .rows = row->rows,
	    .cols = row->cols, .m = row->m, .ht = row->ht,
	    .has_ht = row->has_ht, .seconds = row->seconds,
	    .embedding = embedding };

	if (dtype_parse(row->dtype, &m.dtype) != SPD_OK ||
	    !mat_status_parse(row->status, &m.status)) {
		l->rc = spd_fail(&l->eb, SPD_EFORMAT, "store: %s: %s: bad dtype"
		    " or status", l->op, row->name);
		return 1;
	}
	if (!dup_opt(row->name, &m.name) || !dup_opt(row->module, &m.module) ||
	    !dup_opt(row->type, &m.type) || !dup_opt(row->error, &m.error) ||
	    report_add(l->r, &m) != SPD_OK) {
		mat_result_cleanup(&m);
		l->rc = spd_fail(&l->eb, SPD_ENOMEM, "store: %s: out of memory",
		    l->op);
		return 1;
	}
	return 0;
}

/* Rebuilds the report of a done checkpoint from its stored metrics. */
enum spd_err
store_load_report(struct store *s, int64_t ckpt_id, struct report **out,
    struct spd_errbuf *eb)
{
	struct load	l = { .rc = SPD_OK };
	char		op[96];
	enum spd_err	rc;

	snprintf(op, sizeof op, "load report of checkpoint %" PRId64, ckpt_id);
	l.op = op;
	rc = need_open(s, op, eb);
	if (rc == SPD_OK && out == NULL)
		rc = spd_fail(eb, SPD_EINVAL, "store: %s: bad arguments", op);
	if (rc == SPD_OK)
		rc = load_head(s, ckpt_id, &l.r, op, eb);
	if (rc == SPD_OK)
		rc = metrics_walk(s, ckpt_id, load_add, &l, op, eb);
	if (rc == SPD_ECANCELED && l.rc != SPD_OK)	/* load_add() said why */
		rc = spd_fail(eb, l.rc, "%s", l.eb.msg);
	if (rc != SPD_OK) {
		report_free(l.r);
		return rc;
	}
	*out = l.r;
	return SPD_OK;
}

/* --- alerts ------------------------------------------------------------- */

/* Inserts the module names of alert id. */
static enum spd_err
alert_modules_put(struct store *s, int64_t id, const struct alert *a,
    const char *op, struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	size_t		 i;
	int		 brc = SQLITE_OK;

	if ((rc = prep(s, Q_ALERT_MODULE, &st, op, eb)) != SPD_OK)
		return rc;
	for (i = 0; rc == SPD_OK && i < a->nmodules &&
	    i < ALERT_MAX_MODULES; i++) {
		sqlite3_reset(st);
		b_int(st, 1, id, &brc);
		b_int(st, 2, (int64_t)i, &brc);
		b_text(st, 3, a->modules[i] != NULL ? a->modules[i] : "", &brc);
		rc = brc != SQLITE_OK ? bind_fail(s, brc, op, eb) :
		    step(s, st, NULL, op, eb);
	}
	release(s, st);
	return rc;
}

/* Inserts the alert row unless its key exists; *id 0 then. */
static enum spd_err
alert_row_put(struct store *s, int64_t run_id, long long step_no,
    const struct alert *a, double now, int64_t *id, const char *op,
    struct spd_errbuf *eb)
{
	sqlite3_stmt	*st = NULL;
	enum spd_err	 rc;
	bool		 row = false;
	int		 brc = SQLITE_OK;

	if ((rc = prep(s, Q_ALERT_PUT, &st, op, eb)) != SPD_OK)
		return rc;
	b_int(st, 1, run_id, &brc);
	if (brc == SQLITE_OK && step_no < 0)
		brc = sqlite3_bind_null(st, 2);
	else
		b_int(st, 2, step_no, &brc);
	b_text(st, 3, alert_kind_name(a->kind), &brc);
	b_text(st, 4, alert_severity(a->kind), &brc);
	b_text(st, 5, a->message, &brc);
	b_real(st, 6, a->value, &brc);
	b_real(st, 7, a->threshold, &brc);
	b_u64(st, 8, a->count, &brc);
	b_real(st, 9, now, &brc);
	rc = brc != SQLITE_OK ? bind_fail(s, brc, op, eb) :
	    step(s, st, &row, op, eb);
	*id = rc == SPD_OK && row ? sqlite3_column_int64(st, 0) : 0;
	/* Step to the end: the insert is complete before the next one. */
	if (rc == SPD_OK && row)
		rc = step(s, st, NULL, op, eb);
	release(s, st);
	return rc;
}

/* Stores one alert unless its (run, step, kind) has one (see store.h). */
enum spd_err
store_alert_add(struct store *s, int64_t run_id, long long step_no,
    const struct alert *a, int64_t *id, double *created,
    struct spd_errbuf *eb)
{
	char		op[96];
	enum spd_err	rc;
	double		now = wall_now();

	snprintf(op, sizeof op, "alert %s of run %" PRId64 " at step %lld",
	    a != NULL ? alert_kind_name(a->kind) : "?", run_id, step_no);
	rc = need_rw(s, op, eb);
	if (rc == SPD_OK && (a == NULL || id == NULL ||
	    (unsigned)a->kind >= ALERT_NKINDS))
		rc = spd_fail(eb, SPD_EINVAL, "store: %s: bad arguments", op);
	if (rc == SPD_OK)
		rc = tx_begin(s, op, eb);
	if (rc != SPD_OK)
		return rc;
	rc = alert_row_put(s, run_id, step_no, a, now, id, op, eb);
	if (rc == SPD_OK && *id != 0)
		rc = alert_modules_put(s, *id, a, op, eb);
	if (rc == SPD_OK)
		rc = tx_commit(s, op, eb);
	if (rc != SPD_OK) {
		tx_rollback(s);
		*id = 0;
		return rc;
	}
	if (created != NULL)
		*created = now;
	return SPD_OK;
}

/* A walk's callback and its argument, or what its rows fill. */
struct walk {
	union {
		store_alert_cb		 alert;
		store_alert_count_cb	 count;
		store_sel_step_cb	 sel;
	} cb;
	void	*arg;
	void	*out;
	size_t	 n;
};

/* An alert row being filled, and the copies of its module names. */
struct alert_mods {
	struct alert_row	*row;
	char			*copies[ALERT_MAX_MODULES];
};

/* Copies one module name of an alert (Q_ALERT_MODULES row). */
static enum spd_err
alert_module_row(struct store *s, sqlite3_stmt *st, void *arg,
    const char *op, struct spd_errbuf *eb)
{
	struct alert_mods	*am = arg;
	size_t			 n = am->row->nmodules;
	const char		*m = col_text(st, 0);

	(void)s;
	if (n == ALERT_MAX_MODULES)
		return SPD_OK;
	if ((am->copies[n] = strdup(m != NULL ? m : "")) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "store: %s: out of memory",
		    op);
	am->row->modules[n] = am->copies[n];
	am->row->nmodules++;
	return SPD_OK;
}

/* Calls the callback for one alert (Q_ALERTS row), with its modules. */
static enum spd_err
alert_row_emit(struct store *s, sqlite3_stmt *st, void *arg, const char *op,
    struct spd_errbuf *eb)
{
	struct walk		*w = arg;
	struct alert_row	 row;
	struct alert_mods	 am = { .row = &row };
	enum spd_err		 rc;
	size_t			 i;

	memset(&row, 0, sizeof row);
	row.id = sqlite3_column_int64(st, 0);
	row.run = col_text(st, 1);
	row.step = sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 :
	    sqlite3_column_int64(st, 2);
	row.kind = col_text(st, 3);
	row.severity = col_text(st, 4);
	row.message = col_text(st, 5);
	row.value = col_real(st, 6);
	row.threshold = col_real(st, 7);
	row.count = col_u64(st, 8);
	row.time = sqlite3_column_double(st, 9);
	rc = query_rows(s, Q_ALERT_MODULES, &row.id, 1, alert_module_row, &am,
	    op, eb);
	if (rc == SPD_OK)
		rc = cb_result(w->cb.alert(w->arg, &row), op, eb);
	for (i = 0; i < row.nmodules; i++)
		free(am.copies[i]);
	return rc;
}

/* Calls cb for a run's alerts after since, newest first (see store.h). */
enum spd_err
store_alerts(struct store *s, int64_t run_id, int64_t since, size_t limit,
    store_alert_cb cb, void *arg, struct spd_errbuf *eb)
{
	struct walk	w = { .cb.alert = cb, .arg = arg };
	int64_t		v[3] = { run_id, since, (int64_t)limit };
	char		op[96];

	snprintf(op, sizeof op, "alerts of run %" PRId64, run_id);
	if (limit > INT64_MAX)
		return spd_fail(eb, SPD_EINVAL, "store: %s: bad limit", op);
	return query_rows(s, Q_ALERTS, v, 3, alert_row_emit, &w, op, eb);
}

/* Calls the callback for one (run, kind) count (Q_ALERT_COUNTS row). */
static enum spd_err
alert_count_row(struct store *s, sqlite3_stmt *st, void *arg,
    const char *op, struct spd_errbuf *eb)
{
	struct walk		*w = arg;
	struct alert_count_row	 row = { col_text(st, 0), col_text(st, 1),
	    col_u64(st, 2) };

	(void)s;
	return cb_result(w->cb.count(w->arg, &row), op, eb);
}

/* Calls cb for every (run, kind) with alerts (see store.h). */
enum spd_err
store_alert_counts(struct store *s, store_alert_count_cb cb, void *arg,
    struct spd_errbuf *eb)
{
	struct walk w = { .cb.count = cb, .arg = arg };

	return query_rows(s, Q_ALERT_COUNTS, NULL, 0, alert_count_row, &w,
	    "alert counts", eb);
}

/* Keeps one arrival (Q_ARRIVALS row): step, then wall time. */
static enum spd_err
arrival_row(struct store *s, sqlite3_stmt *st, void *arg, const char *op,
    struct spd_errbuf *eb)
{
	struct walk	*w = arg;
	double		*wall = w->out;

	(void)s;
	(void)op;
	(void)eb;
	if (w->n == 0)
		*(long long *)w->arg = sqlite3_column_int64(st, 0);
	if (w->n < ALERT_STALL_N)
		wall[w->n++] = col_real(st, 1);
	return SPD_OK;
}

/* The run's last arrival times, highest step first (see store.h). */
enum spd_err
store_run_arrivals(struct store *s, int64_t run_id, double *wall, size_t *n,
    long long *last_step, struct spd_errbuf *eb)
{
	struct walk	w = { .arg = last_step, .out = wall };
	int64_t		v[2] = { run_id, ALERT_STALL_N };
	char		op[96];
	enum spd_err	rc;

	snprintf(op, sizeof op, "arrivals of run %" PRId64, run_id);
	*last_step = -1;
	rc = query_rows(s, Q_ARRIVALS, v, 2, arrival_row, &w, op, eb);
	*n = w.n;
	return rc;
}

/* Whether the run is stalled now (see store.h). */
enum spd_err
store_run_stalled(struct store *s, int64_t run_id, bool *stalled,
    struct spd_errbuf *eb)
{
	char		op[96];
	int64_t		flag = 0;
	enum spd_err	rc;

	snprintf(op, sizeof op, "stall of run %" PRId64, run_id);
	rc = query_rows(s, Q_RUN_STALLED, &run_id, 1, int_row, &flag, op, eb);
	*stalled = rc == SPD_OK && flag != 0;
	return rc;
}

/* Calls the callback for one stored selection (Q_SEL_STEPS row). */
static enum spd_err
sel_step_row(struct store *s, sqlite3_stmt *st, void *arg, const char *op,
    struct spd_errbuf *eb)
{
	struct walk		*w = arg;
	struct sel_step_row	 row = { sqlite3_column_int64(st, 0),
	    sqlite3_column_int64(st, 1), col_text(st, 2),
	    sqlite3_column_int64(st, 3) };

	(void)s;
	if (row.modules == NULL)
		row.modules = "";
	return cb_result(w->cb.sel(w->arg, &row), op, eb);
}

/* Calls cb for a run's last stored selections in step order. */
enum spd_err
store_selection_steps(struct store *s, int64_t run_id, unsigned top_percent,
    bool include_embeddings, long long upto, size_t limit,
    store_sel_step_cb cb, void *arg, struct spd_errbuf *eb)
{
	struct walk	w = { .cb.sel = cb, .arg = arg };
	int64_t		v[5] = { run_id, top_percent, include_embeddings, upto,
	    (int64_t)limit };
	char		op[96];

	snprintf(op, sizeof op, "selections of run %" PRId64 " at %u%%",
	    run_id, top_percent);
	if (limit > INT64_MAX)
		return spd_fail(eb, SPD_EINVAL, "store: %s: bad limit", op);
	return query_rows(s, Q_SEL_STEPS, v, 5, sel_step_row, &w, op, eb);
}
