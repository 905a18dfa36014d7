/**
 * Organisers' databases (ONSALE.md §5). The main database keeps the directory: each organiser's
 * number, name, key hash and where its database is, and which concert belongs to whom; it also
 * holds the default organiser's data. Every other organiser's data lives in a database of its
 * own, created and migrated here, on the main database's server or at a `database_url` given.
 *
 * The application's `SqlClient` is routed: each statement runs in the database of the fiber's
 * `CurrentOrganiser`. Repositories, the concert entities and the background work are written
 * once and work in whichever organiser's database their fiber is in.
 *
 * Connections: organisers' pools are opened on first use and closed when idle. At most
 * `ORGANISER_DATABASES_OPEN` have connections at once, each at most `ORGANISER_POOL_SIZE`: when
 * that many are open, the least recently used idle one is closed to open another, and when none
 * is idle the caller waits for one. So 1,000 organisers never hold 20,000 connections.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Config, Context, Deferred, Duration, Effect, Exit, FiberId, FiberRef, Layer, Option, Redacted, Schedule, Scope } from "effect"
import * as crypto from "node:crypto"
import Pg from "pg"
import { CurrentOrganiser, defaultOrganiser, maxOrganiser, newId, organiserOf } from "../domain/Organiser.js"
import { databaseSessionName, positiveInteger, withoutSessionName } from "../Settings.js"
import { exclusively, runMigrations } from "./migrations.js"
import { PreparingClient } from "./Prepared.js"
import { withSpan } from "../Spans.js"

/** The main database: the directory, the default organiser's data, the cluster's tables. */
export class MainDatabase extends Context.Tag("MainDatabase")<MainDatabase, {
  readonly client: PgClient.PgClient
  readonly url: Redacted.Redacted
}>() {}

/**
 * Work that only looks (the sweeps for plans to render, prints to queue, timers to set): it
 * does not keep an organiser's pool open, so an organiser nobody uses is closed after its idle
 * time however often the sweeps look at it.
 */
export const Background: FiberRef.FiberRef<boolean> = FiberRef.unsafeMake(false)

/** The directory's schema, in the main database only: its own steps, its own table of them. */
export const runDirectoryMigrations = exclusively("ticketoverflow_directory_migrations", Migrator.make({})({
  loader: Migrator.fromRecord({
    "0001_organisers": Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE SEQUENCE organiser_numbers START WITH 1 MAXVALUE ${sql.literal(String(maxOrganiser))}`
      yield* sql`
        CREATE TABLE organisers (
          number integer PRIMARY KEY,
          id uuid NOT NULL UNIQUE,
          name text NOT NULL,
          key_sha256 bytea NOT NULL,
          -- The organiser's database on the main database's server, or its own URL.
          database_name text,
          database_url text,
          ready boolean NOT NULL DEFAULT false,
          created_at timestamptz NOT NULL DEFAULT now(),
          CHECK ((database_name IS NULL) <> (database_url IS NULL))
        )`
      yield* sql`
        CREATE TABLE organiser_concerts (
          concert_id uuid PRIMARY KEY,
          organiser integer NOT NULL REFERENCES organisers (number),
          created_at timestamptz NOT NULL DEFAULT now()
        )`
    }),
    // Two organisers never share a database given by URL, even when created at the same moment.
    "0002_one_organiser_per_database_url": Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE UNIQUE INDEX organisers_database_url ON organisers (database_url) WHERE database_url IS NOT NULL`
    })
  }),
  table: "ticketoverflow_directory_migrations"
}))

/** An organiser's key: its number (so the look-up is by number) and 256 random bits. */
const keyPattern = /^tko_([0-9a-z]{1,7})_([A-Za-z0-9_-]{43})$/
const sha256 = (text: string) => crypto.createHash("sha256").update(text).digest()
/** Compared against when a key names no organiser, so that a miss takes as long as a wrong key. */
const nobody = sha256("no organiser has this key")

/** A `database_url` that could not be used for a new organiser: the request's fault, a 422. */
export class DatabaseUrlRefused extends Error {
  readonly _tag = "DatabaseUrlRefused"
}

interface Listed {
  readonly number: number
  readonly keySha256: Buffer
  readonly url: Redacted.Redacted
  /** When the directory was last read for it: a key replaced elsewhere is seen within `keyRecheck`. */
  readonly checkedAt: number
}

/** How long a process goes on trusting the key hash it read: a replaced key stops working everywhere within this. */
const keyRecheck = 10_000

interface Entry {
  readonly organiser: number
  readonly pool: Pg.Pool
  readonly scope: Scope.CloseableScope
  readonly ready: Deferred.Deferred<PgClient.PgClient, SqlError>
  client: PgClient.PgClient | undefined
  /** The client's connection for single statements (`plainAcquirer`), once open. */
  plain: Connection.Acquirer | undefined
  /** Leases held now: statements and transactions using the database. */
  active: number
  lastUsed: number
}

const unavailable = (organiser: number, cause: unknown) =>
  new SqlError({ cause, message: `the database of organiser ${organiser} is unavailable` })

/** What went wrong at the bottom of a chain of causes (the driver's or the server's words). */
export const rootMessage = (error: unknown): string => {
  let current = error
  while (current instanceof Error && current.cause instanceof Error) current = current.cause
  return current instanceof Error ? current.message : String(current)
}

/**
 * A client's connection for single statements: the one its own statements use, read from one of
 * them (`@effect/sql-pg` does not expose it otherwise). Unlike `reserve`, it gives the pool's
 * connection back when the fiber waiting for one is interrupted: `reserve` leaves a connection
 * that arrives after the interruption checked out for ever (a fix `@effect/sql-pg` could take:
 * release it in the canceller, as its single-statement connection does).
 */
const plainAcquirer = (client: SqlClient.SqlClient): Connection.Acquirer =>
  (client.unsafe("SELECT 1") as unknown as { readonly acquirer?: Connection.Acquirer }).acquirer ??
    Effect.uninterruptible(client.reserve)

/** The URL of a database of that name on the same server as `url`. */
const sibling = (url: Redacted.Redacted, database: string) => {
  const parsed = new URL(Redacted.value(url))
  parsed.pathname = `/${database}`
  return Redacted.make(parsed.toString())
}

export class OrganiserDatabases extends Effect.Service<OrganiserDatabases>()("OrganiserDatabases", {
  scoped: Effect.gen(function*() {
    const main = yield* MainDatabase
    const reactivity = yield* Reactivity.Reactivity
    const poolSize = yield* positiveInteger("ORGANISER_POOL_SIZE", 4)
    const maxOpen = yield* positiveInteger("ORGANISER_DATABASES_OPEN", 8)
    const idle = Duration.toMillis(yield* Config.duration("ORGANISER_IDLE").pipe(Config.withDefault(Duration.seconds(30))))
    const adminToken = yield* Config.option(Config.redacted("ADMIN_TOKEN")).pipe(
      Effect.map(Option.filter((token) => Redacted.value(token) !== ""))
    )
    const adminSha256 = Option.map(adminToken, (token) => sha256(Redacted.value(token)))

    /** How long a statement waits for its organiser's database to be open here before a 503. */
    const waitLimit = yield* Config.duration("ORGANISER_WAIT").pipe(Config.withDefault(Duration.seconds(5)))

    /** Organisers known to exist, by number: their key hash and database. */
    const listed = new Map<number, Listed>()
    /** The highest organiser number seen ready, and when it was read: one far above it is nobody's, for a second. */
    let highest = 0
    let highestAt = 0
    /** Organisers whose database this process has migrated. */
    const migrated = new Set<number>()
    const entries = new Map<number, Entry>()
    /** When each organiser's database was last used here by anything but background work. */
    const usedAt = new Map<number, number>()
    /** Completed (and replaced) whenever a lease ends or an entry closes: a waiter tries again. */
    let freed = Deferred.unsafeMake<void>(FiberId.none)
    const signal = () => {
      Deferred.unsafeDone(freed, Exit.void)
      freed = Deferred.unsafeMake<void>(FiberId.none)
    }
    const opening = yield* Effect.makeSemaphore(1)
    const lookups = yield* Effect.makeSemaphore(4)

    const urlOf = (row: { readonly database_name: string | null; readonly database_url: string | null }) =>
      row.database_url !== null ? Redacted.make(row.database_url) : sibling(main.url, row.database_name!)

    /**
     * The organiser `number`, from the directory, as cached, or read again when `maxAge` (ms) is
     * given and the cached entry is older. A number far above the highest known (read within the
     * last second) is answered without a look-up; any other miss costs one, four at a time.
     */
    const find = (number: number, maxAge?: number): Effect.Effect<Option.Option<Listed>, SqlError> => {
      const known = listed.get(number)
      if (known !== undefined && (maxAge === undefined || Date.now() - known.checkedAt < maxAge)) {
        return Effect.succeed(Option.some(known))
      }
      if (!Number.isSafeInteger(number) || number < 1 || number > maxOrganiser) return Effect.succeed(Option.none())
      if (number > highest + 1000 && Date.now() - highestAt < 1000) return Effect.succeed(Option.none())
      const asked = Date.now()
      return lookups.withPermits(1)(main.client<{
        highest: number | null
        key_sha256: Buffer | null
        database_name: string | null
        database_url: string | null
      }>`
        SELECT m.highest, o.key_sha256, o.database_name, o.database_url
        FROM (SELECT max(number) AS highest FROM organisers WHERE ready) m
        LEFT JOIN organisers o ON o.number = ${number} AND o.ready`).pipe(
        Effect.map(([row]) => {
          highest = Math.max(highest, row?.highest ?? 0)
          highestAt = Date.now()
          if (row === undefined || row.key_sha256 === null) return Option.none()
          const entry: Listed = { number, keySha256: row.key_sha256, url: urlOf(row), checkedAt: asked }
          // A newer entry (a key replaced here meanwhile) is not overwritten by an older read.
          const current = listed.get(number)
          if (current !== undefined && current.checkedAt > asked) return Option.some(current)
          listed.set(number, entry)
          return Option.some(entry)
        })
      )
    }

    const migrate = (organiser: number, client: PgClient.PgClient) =>
      migrated.has(organiser) ? Effect.void : runMigrations.pipe(
        Effect.provideService(SqlClient.SqlClient, client),
        Effect.mapError((error) => error instanceof SqlError ? error : unavailable(organiser, error)),
        Effect.tap(() => Effect.sync(() => migrated.add(organiser)))
      )

    // Named as the main database's sessions are: a runner's, in an organiser's database on the
    // main one's server, are ended with the others when it stops answering (`FencingLive`).
    const sessionName = yield* databaseSessionName
    const newPool = (url: Redacted.Redacted, max: number) => {
      const pool = new Pg.Pool({
        connectionString: withoutSessionName(Redacted.value(url)),
        max,
        idleTimeoutMillis: idle,
        connectionTimeoutMillis: 5000,
        application_name: sessionName,
        Client: PreparingClient
      })
      pool.on("error", () => {})
      return pool
    }

    const clientOf = (pool: Pg.Pool, scope: Scope.Scope) =>
      PgClient.fromPool({ acquire: Effect.succeed(pool), transformJson: false }).pipe(
        Effect.provideService(Reactivity.Reactivity, reactivity),
        Scope.extend(scope)
      )

    const close = (entry: Entry) =>
      Scope.close(entry.scope, Exit.void).pipe(
        // Interruptible, so that the time limit holds even where this runs (finalizers, locks).
        Effect.zipRight(Effect.promise(() => entry.pool.end()).pipe(Effect.interruptible, Effect.timeoutOption(1000))),
        Effect.ensuring(Effect.sync(signal))
      )

    /** Opens an entry's client: its first connection, and the schema migrated once per process. */
    const open = (entry: Entry, listedAs: Listed) =>
      Effect.gen(function*() {
        const client = yield* clientOf(entry.pool, entry.scope)
        yield* migrate(entry.organiser, client)
        entry.plain = plainAcquirer(client)
        entry.client = client
        return client
      }).pipe(
        Effect.exit,
        Effect.flatMap((exit) => {
          if (Exit.isSuccess(exit)) return Deferred.done(entry.ready, exit)
          // A database that cannot be opened now is tried again by the next caller.
          entries.delete(listedAs.number)
          return Effect.zipRight(close(entry), Deferred.done(entry.ready, Exit.mapError(exit, (e) => unavailable(listedAs.number, e))))
        }),
        Effect.forkDaemon
      )

    const make = (listedAs: Listed, background: boolean) =>
      Effect.gen(function*() {
        const entry: Entry = {
          organiser: listedAs.number,
          pool: newPool(listedAs.url, poolSize),
          scope: yield* Scope.make(),
          ready: yield* Deferred.make<PgClient.PgClient, SqlError>(),
          client: undefined,
          plain: undefined,
          active: 0,
          // Opened by background work alone, it is the first to go.
          lastUsed: background ? 0 : Date.now()
        }
        entries.set(entry.organiser, entry)
        yield* open(entry, listedAs)
      })

    /** Opens `organiser`'s entry, or closes an idle one to make room, or waits for one to be idle. */
    const openOrWait = (organiser: number, background: boolean): Effect.Effect<void, SqlError> =>
      Effect.flatMap(find(organiser), (found) => {
        if (Option.isNone(found)) return Effect.fail(unavailable(organiser, new Error("no such organiser")))
        const listedAs = found.value
        return opening.withPermits(1)(Effect.suspend((): Effect.Effect<Option.Option<Deferred.Deferred<void>>> => {
          if (entries.has(organiser)) return Effect.succeed(Option.none())
          if (entries.size < maxOpen) return Effect.as(make(listedAs, background), Option.none())
          let victim: Entry | undefined
          for (const entry of entries.values()) {
            if (entry.active === 0 && entry.client !== undefined && (victim === undefined || entry.lastUsed < victim.lastUsed)) {
              victim = entry
            }
          }
          // Every open database is in use: wait for a lease to end.
          if (victim === undefined) return Effect.succeed(Option.some(freed))
          entries.delete(victim.organiser)
          return Effect.zipRight(close(victim), Effect.as(make(listedAs, background), Option.none()))
        })).pipe(Effect.flatMap(Option.match({ onNone: () => Effect.void, onSome: Deferred.await })))
      })

    /** Waits until `organiser`'s entry is open here (opening it if need be), without leasing it. */
    const opened = (organiser: number, background: boolean): Effect.Effect<Entry, SqlError> =>
      Effect.suspend(() => {
        const entry = entries.get(organiser)
        if (entry === undefined) return Effect.zipRight(openOrWait(organiser, background), opened(organiser, background))
        if (entry.client !== undefined) return Effect.succeed(entry)
        return Effect.zipRight(Deferred.await(entry.ready), opened(organiser, background))
      })

    const busy = (organiser: number) =>
      unavailable(organiser, new Error(`no connection to its database within ${Duration.format(waitLimit)}`))

    /**
     * `organiser`'s entry, leased (its `active` counted) until `release`. The wait is
     * interruptible and limited; the count is taken in one step once the entry is open, and
     * only if it still is (an idle close may have taken it meanwhile: then the wait starts over).
     */
    const lease = (organiser: number, background: boolean): Effect.Effect<Entry, SqlError> => {
      const attempt: Effect.Effect<Entry, SqlError> = Effect.interruptible(opened(organiser, background)).pipe(
        Effect.flatMap((entry) => {
          if (entries.get(organiser) !== entry) return attempt
          entry.active++
          if (!background) {
            const now = Date.now()
            entry.lastUsed = now
            usedAt.set(organiser, now)
          }
          return Effect.succeed(entry)
        })
      )
      return attempt.pipe(Effect.timeoutFail({ duration: waitLimit, onTimeout: () => busy(organiser) }))
    }

    const release = (entry: Entry) => {
      entry.active--
      if (entry.active === 0) signal()
    }

    const leased = (organiser: number, background: boolean) =>
      Effect.acquireRelease(lease(organiser, background), (entry) => Effect.sync(() => release(entry)))

    // Idle organisers' pools are closed.
    yield* Effect.forkScoped(Effect.repeat(
      opening.withPermits(1)(Effect.suspend(() => {
        const now = Date.now()
        const idleOnes = [...entries.values()].filter((e) => e.active === 0 && e.client !== undefined && now - e.lastUsed >= idle)
        for (const entry of idleOnes) entries.delete(entry.organiser)
        return Effect.forEach(idleOnes, close, { discard: true })
      })),
      Schedule.spaced(Duration.millis(Math.max(100, Math.min(idle / 2, 5000))))
    ))
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        const open = [...entries.values()]
        entries.clear()
        return Effect.forEach(open, close, { discard: true, concurrency: "unbounded" })
      })
    )

    /**
     * A connection to the current organiser's database, for one statement or one transaction.
     * (A transaction's connection is then found by `@effect/sql` in the fiber's context whatever
     * organiser a statement inside it names: nothing inside a transaction changes organiser.)
     */
    const mainPlain = plainAcquirer(main.client)
    const routedAcquirer = (transaction: boolean): Effect.Effect<Connection, SqlError, Scope.Scope> =>
      Effect.flatMap(FiberRef.get(CurrentOrganiser), (organiser) => {
        if (organiser === defaultOrganiser) return transaction ? main.client.reserve : mainPlain
        return Effect.flatMap(
          Effect.flatMap(FiberRef.get(Background), (background) => leased(organiser, background)),
          // An organiser's pool gives up waiting after its connection timeout: waiting for a
          // transaction's connection uninterruptibly is bounded, and never leaks one.
          (entry) => transaction ? Effect.uninterruptible(entry.client!.reserve) : entry.plain!
        )
      })

    const routed = yield* SqlClient.make({
      acquirer: routedAcquirer(false),
      transactionAcquirer: routedAcquirer(true),
      compiler: PgClient.makeCompiler(undefined, false),
      spanAttributes: [["db.system.name", "postgresql"]]
    }).pipe(Effect.provideService(Reactivity.Reactivity, reactivity))

    /** Creates, migrates and registers an organiser; its key is returned this once. */
    /**
     * Whether a database given by URL already holds this service's tables (the main database,
     * another organiser's): an organiser's database must be its own.
     */
    const holdsData = (url: string) =>
      Effect.tryPromise({
        try: async () => {
          const client = new Pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
          client.on("error", () => {})
          await client.connect()
          try {
            const { rows } = await client.query<{ taken: boolean }>(
              "SELECT to_regclass('ticketoverflow_migrations') IS NOT NULL OR to_regclass('concerts') IS NOT NULL AS taken"
            )
            return rows[0]?.taken === true
          } finally {
            await client.end().catch(() => undefined)
          }
        },
        catch: (cause) => new DatabaseUrlRefused(`database_url could not be used: ${rootMessage(cause)}`)
      })

    /**
     * Creates, migrates and registers an organiser; its key is returned this once. On failure,
     * or when its client goes away while it waits for a connection, it removes what it made:
     * the directory's row, its pool, and the database it created.
     */
    const create = (name: string, databaseUrl: string | undefined) =>
      Effect.gen(function*() {
        if (databaseUrl !== undefined && (yield* holdsData(databaseUrl))) {
          return yield* Effect.fail(
            new DatabaseUrlRefused("database_url names a database that already holds TicketOverflow data: give an empty one")
          )
        }
        const [{ number }] = yield* main.client<{ number: number }>`SELECT nextval('organiser_numbers')::int AS number`
        const id = newId(number!)
        const secret = crypto.randomBytes(32).toString("base64url")
        const apiKey = `tko_${number!.toString(36)}_${secret}`
        const [{ database }] = yield* main.client<{ database: string }>`SELECT current_database() AS database`
        const databaseName = databaseUrl === undefined ? `${database}_organiser_${number}` : null
        let created = false
        const undo = Effect.gen(function*() {
          listed.delete(number!)
          const opened = entries.get(number!)
          if (opened !== undefined) {
            entries.delete(number!)
            yield* close(opened)
          }
          yield* main.client`DELETE FROM organisers WHERE number = ${number!}`.pipe(Effect.ignore)
          if (created) yield* main.client.unsafe(`DROP DATABASE IF EXISTS ${Pg.escapeIdentifier(databaseName!)} WITH (FORCE)`).pipe(Effect.ignore)
        })
        yield* Effect.gen(function*() {
          yield* main.client`INSERT INTO organisers ${
            main.client.insert({
              number: number!,
              id,
              name,
              key_sha256: sha256(secret),
              database_name: databaseName,
              database_url: databaseUrl ?? null
            })
          }`.pipe(
            Effect.catchIf(
              (error) => (error.cause as { code?: string } | undefined)?.code === "23505",
              () => Effect.fail(new DatabaseUrlRefused("database_url is another organiser's database: give an empty one of its own"))
            )
          )
          let url: Redacted.Redacted
          if (databaseName !== null) {
            yield* main.client.unsafe(`CREATE DATABASE ${Pg.escapeIdentifier(databaseName)}`)
            created = true
            url = sibling(main.url, databaseName)
          } else {
            url = Redacted.make(databaseUrl!)
          }
          // Opened and migrated now, as any organiser's database is (within the same bound on
          // connections): the first buyer finds it ready.
          listed.set(number!, { number: number!, keySha256: sha256(secret), url, checkedAt: Date.now() })
          yield* Effect.scoped(leased(number!, false)).pipe(
            Effect.mapError((error) =>
              databaseUrl === undefined ? error : new DatabaseUrlRefused(`database_url could not be used: ${rootMessage(error)}`)
            )
          )
          yield* main.client`UPDATE organisers SET ready = true WHERE number = ${number!}`
          highest = Math.max(highest, number!)
        }).pipe(Effect.onError(() => undo))
        return { id, name, apiKey }
      }).pipe(Effect.uninterruptible, withSpan("OrganiserDatabases.create", { captureStackTrace: false }))

    return {
      routed,
      create,
      /** Whether `organiser` exists (the default always does). */
      exists: (organiser: number): Effect.Effect<boolean, SqlError> =>
        organiser === defaultOrganiser ? Effect.succeed(true) : Effect.map(find(organiser), Option.isSome),
      /**
       * The organiser a bearer token acts as: `"admin"` for `ADMIN_TOKEN`, an organiser's number
       * for its key, none for anything else. Compared in constant time, and a key that names no
       * organiser is compared too: a wrong key takes as long whoever it names.
       */
      authenticate: (token: string): Effect.Effect<Option.Option<"admin" | number>, SqlError> =>
        Effect.suspend(() => {
          const given = sha256(token)
          if (Option.isSome(adminSha256) && crypto.timingSafeEqual(given, adminSha256.value)) {
            return Effect.succeed(Option.some("admin" as const))
          }
          const parsed = keyPattern.exec(token)
          if (parsed === null) return Effect.succeed(Option.none())
          const number = Number.parseInt(parsed[1]!, 36)
          const secret = sha256(parsed[2]!)
          const check = (found: Option.Option<Listed>) =>
            crypto.timingSafeEqual(secret, Option.isSome(found) ? found.value.keySha256 : nobody) && Option.isSome(found)
          // A hash read more than `keyRecheck` ago is read again; and a key that does not match
          // one read more than a second ago is checked again too (a key just made or replaced
          // on another process works here within about a second).
          return Effect.flatMap(find(number, keyRecheck), (found) =>
            check(found)
              ? Effect.succeed(Option.some(number))
              : Effect.map(find(number, 1000), (again) => check(again) ? Option.some(number) : Option.none()))
        }),
      /** Every organiser with a database of its own, in creation order. */
      list: main.client<{ id: string; name: string; created_at: Date }>`
        SELECT id::text, name, created_at FROM organisers WHERE ready ORDER BY number`,
      /**
       * A new key for the organiser `id` (returned this once); the old one stops working here at
       * once and in every other process within `keyRecheck`. None when there is no such organiser.
       */
      replaceKey: (id: string): Effect.Effect<Option.Option<{ readonly id: string; readonly name: string; readonly apiKey: string }>, SqlError> =>
        Effect.gen(function*() {
          const number = organiserOf(id)
          if (number === defaultOrganiser) return Option.none()
          const secret = crypto.randomBytes(32).toString("base64url")
          const rows = yield* main.client<{ name: string }>`
            UPDATE organisers SET key_sha256 = ${sha256(secret)} WHERE number = ${number} AND id = ${id} AND ready
            RETURNING name`
          if (rows.length === 0) return Option.none()
          const known = listed.get(number)
          if (known !== undefined) listed.set(number, { ...known, keySha256: sha256(secret), checkedAt: Date.now() })
          return Option.some({ id, name: rows[0]!.name, apiKey: `tko_${number.toString(36)}_${secret}` })
        }).pipe(withSpan("OrganiserDatabases.replaceKey", { captureStackTrace: false })),
      /** Whether `ADMIN_TOKEN` is set: without it `POST /organisers` does not exist. */
      adminConfigured: Option.isSome(adminToken),
      /** Records that a concert is `organiser`'s (the directory; the id itself says so too). */
      registerConcert: (organiser: number, concertId: string) =>
        organiser === defaultOrganiser ? Effect.void : main.client`
          INSERT INTO organiser_concerts (concert_id, organiser) VALUES (${concertId}, ${organiser}) ON CONFLICT DO NOTHING`.pipe(
          Effect.asVoid
        ),
      /**
       * Runs `f` in each organiser's database, the default organiser's first, as background work
       * (`Background`): in all of them, or in those open here, used here since `since` (epoch ms)
       * or named in `also`. One organiser's failure is logged and the others go on.
       */
      forEach: (
        which: "all" | { readonly since: number; readonly also?: Iterable<number> },
        f: (organiser: number) => Effect.Effect<void, unknown>,
        options?: { readonly concurrency?: number }
      ): Effect.Effect<void> =>
        Effect.gen(function*() {
          let others: Iterable<number>
          if (which === "all") {
            others = yield* main.client<{ number: number }>`SELECT number FROM organisers WHERE ready ORDER BY number`.pipe(
              Effect.map((rows) => rows.map((row) => row.number)),
              Effect.catchAll((error) =>
                Effect.as(Effect.logWarning("the organisers could not be listed").pipe(Effect.annotateLogs({ error: String(error) })), [])
              )
            )
          } else {
            const chosen = new Set<number>(entries.keys())
            for (const [organiser, at] of usedAt) if (at >= which.since) chosen.add(organiser)
            for (const organiser of which.also ?? []) chosen.add(organiser)
            chosen.delete(defaultOrganiser)
            others = chosen
          }
          yield* Effect.forEach(
            [defaultOrganiser, ...others],
            (organiser) =>
              f(organiser).pipe(
                Effect.locally(CurrentOrganiser, organiser),
                Effect.catchAllCause((cause) =>
                  Effect.logWarning("background work in an organiser's database failed").pipe(
                    Effect.annotateLogs({ organiser, cause: String(cause) })
                  )
                )
              ),
            { discard: true, concurrency: options?.concurrency ?? 1 }
          )
        }).pipe(Effect.locally(Background, true)),
      /** Connections held to organisers' databases (not the main one), and how many databases have them. */
      stats: () => {
        let connections = 0
        for (const entry of entries.values()) connections += entry.pool.totalCount
        return { connections, databases: entries.size, maxConnections: maxOpen * poolSize }
      }
    } as const
  })
}) {}

/** The service, needing the `MainDatabase`: one per process (every user of it must share it). */
export const OrganisersLive = OrganiserDatabases.Default.pipe(Layer.provide(Reactivity.layer))

/** The routed client, as the application's `SqlClient` (with the service itself). */
export const RoutedSqlLive = Layer.effect(SqlClient.SqlClient, Effect.map(OrganiserDatabases, (o) => o.routed)).pipe(
  Layer.provideMerge(OrganisersLive)
)
