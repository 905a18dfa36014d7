import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import { Effect, Option, Schema } from "effect"
import { withSpan } from "../Spans.js"

/** A concert whose plan is missing or shows an older count or version than the journal. */
export const StalePlan = Schema.Struct({
  concertId: Schema.String,
  name: Schema.String,
  venue: Schema.String,
  capacity: Schema.Int,
  version: Schema.Int,
  purchased: Schema.Int,
  /** The concert's count of seat changes (sales, holds, releases) the plan will show. */
  seatChanges: Schema.Number,
  /** Its plan exists and shows its current details: only its seats are behind. */
  redraw: Schema.Boolean
})
export type StalePlan = typeof StalePlan.Type

/** A concert's current plan as stored: its ETag and the gzipped SVG. */
export const StoredPlan = Schema.Struct({
  etag: Schema.String,
  gzip: Schema.Uint8ArrayFromSelf
})
export type StoredPlan = typeof StoredPlan.Type

const PlanTag = Schema.Struct({ etag: Schema.String })

/** Seat numbers as PostgreSQL's `int4send` writes them, one after the other (big-endian). */
const seatNumbers = (bytes: Uint8Array | undefined): Int32Array => {
  if (bytes === undefined) return new Int32Array(0)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const seats = new Int32Array(bytes.byteLength >> 2)
  for (let i = 0; i < seats.length; i++) seats[i] = view.getInt32(i * 4)
  return seats
}

export class SeatingPlansRepo extends Effect.Service<SeatingPlansRepo>()("SeatingPlansRepo", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    /**
     * The next plans to render, most urgent first: concerts without any plan, smallest first
     * (a flood of huge concerts must not hold back a small one's first plan), then plans
     * behind the journal, the longest-unrendered first.
     */
    const stale = SqlSchema.findAll({
      Request: Schema.Struct({ limit: Schema.Int, seats: Schema.Boolean }),
      Result: StalePlan,
      execute: ({ limit, seats }) =>
        sql`SELECT c.id AS "concertId", c.name, c.venue, c.capacity, c.version, s.purchased,
                   c.seat_changes::float8 AS "seatChanges",
                   (p.concert_id IS NOT NULL AND p.concert_version = c.version) AS redraw
            FROM concerts c
            LEFT JOIN seating_plans p ON p.concert_id = c.id
            CROSS JOIN LATERAL (SELECT count(*)::int AS purchased FROM tickets t WHERE t.concert_id = c.id) s
            WHERE ${
          seats
            ? sql`p.concert_id IS NULL OR p.concert_version <> c.version OR p.purchased <> s.purchased
                  OR p.seat_changes <> c.seat_changes`
            // Tickets are counted only for the concerts this finds.
            : sql`p.concert_id IS NULL OR p.concert_version <> c.version`
        }
            ORDER BY p.concert_id IS NOT NULL, CASE WHEN p.concert_id IS NULL THEN c.capacity END, p.rendered_at
            LIMIT ${limit}`
    })

    const store = (plan: StalePlan, etag: string, gzip: Uint8Array) =>
      sql`INSERT INTO seating_plans (concert_id, concert_version, purchased, seat_changes, etag, svg_gzip)
          VALUES (${plan.concertId}, ${plan.version}, ${plan.purchased}, ${plan.seatChanges}, ${etag}, ${gzip})
          ON CONFLICT (concert_id) DO UPDATE
          SET concert_version = EXCLUDED.concert_version, purchased = EXCLUDED.purchased,
              seat_changes = EXCLUDED.seat_changes,
              etag = EXCLUDED.etag, svg_gzip = EXCLUDED.svg_gzip, rendered_at = now()`

    /**
     * Which seats are sold and which held, for a render: each list as one `bytea` of the seats'
     * numbers (`int4send`, four bytes each), read into an `Int32Array` without an object per seat.
     */
    const seats = (concertId: string) =>
      sql<{ sold: Uint8Array; held: Uint8Array }>`
        SELECT coalesce((SELECT string_agg(int4send(seat_no), ''::bytea) FROM tickets WHERE concert_id = ${concertId}), ''::bytea) AS sold,
               coalesce((SELECT string_agg(int4send(seat_no), ''::bytea) FROM held_seats WHERE concert_id = ${concertId}), ''::bytea) AS held`.pipe(
        Effect.map(([row]) => ({ sold: seatNumbers(row?.sold), held: seatNumbers(row?.held) }))
      )

    /** The ETag of a concert's stored plan: which plan is current, without its bytes. */
    const etag = SqlSchema.findOne({
      Request: Schema.String,
      Result: PlanTag,
      execute: (concertId) => sql`SELECT etag FROM seating_plans WHERE concert_id = ${concertId}`
    })

    const find = SqlSchema.findOne({
      Request: Schema.String,
      Result: StoredPlan,
      execute: (concertId) => sql`SELECT etag, svg_gzip AS gzip FROM seating_plans WHERE concert_id = ${concertId}`
    })

    const span = (name: string) => withSpan(`SeatingPlansRepo.${name}`, { captureStackTrace: false })
    return {
      /**
       * Up to `limit` plans to render; with `seats: false`, only those missing or showing old
       * details (a new concert, a renamed one), not those only behind on seats.
       */
      stale: (limit: number, options: { readonly seats: boolean } = { seats: true }) =>
        stale({ limit, seats: options.seats }).pipe(Effect.orDie, span("stale")),
      store: (plan: StalePlan, etag: string, gzip: Uint8Array) => store(plan, etag, gzip).pipe(Effect.asVoid, Effect.orDie, span("store")),
      seats: (concertId: string) => seats(concertId).pipe(Effect.orDie, span("seats")),
      etag: (concertId: string) => etag(concertId).pipe(Effect.map(Option.map((row) => row.etag)), Effect.orDie, span("etag")),
      find: (concertId: string) => find(concertId).pipe(Effect.orDie, span("find"))
    } as const
  })
}) {}
