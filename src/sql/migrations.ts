import { Migrator } from "@effect/sql"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * The schema, one numbered step at a time. A step, once released, is never edited: change the
 * schema with a new step.
 */
const initialSchema = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE concerts (
      id uuid PRIMARY KEY,
      seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
      name text NOT NULL,
      venue text NOT NULL,
      date text NOT NULL CHECK (date ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'),
      capacity integer NOT NULL CHECK (capacity BETWEEN 1 AND 150000),
      status text NOT NULL CHECK (status IN ('ACTIVE', 'CANCELLED', 'SOLD_OUT')),
      version integer NOT NULL DEFAULT 1,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (id, capacity)
    )`
  // The seat number and the copy of the capacity (held equal to the concert's by the foreign
  // key) let the database itself refuse an oversold seat, whichever process wrote it.
  yield* sql`
    CREATE TABLE tickets (
      id uuid PRIMARY KEY,
      concert_id uuid NOT NULL,
      capacity integer NOT NULL,
      seat_no integer NOT NULL,
      user_id text NOT NULL,
      print_status text NOT NULL DEFAULT 'NOT_PRINTED'
        CHECK (print_status IN ('NOT_PRINTED', 'PENDING', 'PRINTED', 'ERROR')),
      idempotency_key text,
      created_at timestamptz NOT NULL DEFAULT now(),
      FOREIGN KEY (concert_id, capacity) REFERENCES concerts (id, capacity),
      CHECK (seat_no BETWEEN 1 AND capacity),
      CONSTRAINT tickets_seat_unique UNIQUE (concert_id, seat_no)
    )`
  yield* sql`CREATE UNIQUE INDEX tickets_idempotency_key ON tickets (idempotency_key) WHERE idempotency_key IS NOT NULL`
  yield* sql`CREATE INDEX tickets_user ON tickets (user_id)`
})

/** Printed tickets and rendered seating plans, each stamped with the concert version it shows. */
const renders = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE ticket_prints (
      ticket_id uuid PRIMARY KEY REFERENCES tickets (id),
      concert_version integer NOT NULL,
      svg text NOT NULL,
      printed_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`
    CREATE TABLE seating_plans (
      concert_id uuid PRIMARY KEY REFERENCES concerts (id),
      concert_version integer NOT NULL,
      purchased integer NOT NULL,
      etag text NOT NULL,
      svg_gzip bytea NOT NULL,
      rendered_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`CREATE INDEX tickets_pending ON tickets (concert_id) WHERE print_status = 'PENDING'`
})

export const runMigrations = Migrator.make({})({
  loader: Migrator.fromRecord({
    "0001_initial_schema": initialSchema,
    "0002_renders": renders
  }),
  table: "ticketoverflow_migrations"
})
