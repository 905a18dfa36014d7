import { SqlClient } from "@effect/sql"
import { expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { layerFromUrl } from "../../src/sql/Database.js"
import { freshDatabaseUrl } from "../fixtures/Database.js"

it.scopedLive("processes that migrate a new database at the same moment all succeed, and the steps run once", () =>
  Effect.gen(function*() {
    const url = Redacted.make(yield* freshDatabaseUrl)
    // Each with a pool of its own, as separate processes have: without the schema's lock, all
    // but one failed to make the table of steps (or a table) made by another at that moment.
    const steps = yield* Effect.all(
      Array.from({ length: 6 }, () =>
        Effect.scoped(Effect.flatMap(Layer.build(layerFromUrl(url)), (context) =>
          Effect.flatMap(SqlClient.SqlClient, (sql) =>
            sql<{ n: number }>`SELECT count(*)::int AS n FROM ticketoverflow_migrations`
          ).pipe(Effect.provide(context))))
      ),
      { concurrency: "unbounded" }
    )
    // Every process sees the six steps, each made once.
    expect(steps.map(([row]) => row!.n)).toEqual(Array(6).fill(6))
  }))
