import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Schema } from "effect"
import * as crypto from "node:crypto"
import { Concert, type CreateConcert } from "../domain/Concert.js"
import { ConcertId } from "../domain/Ids.js"

const columns = "id, name, venue, date, capacity, status"

export class ConcertsRepo extends Effect.Service<ConcertsRepo>()("ConcertsRepo", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const insert = SqlSchema.single({
      Request: Concert,
      Result: Concert,
      execute: (c) =>
        sql`INSERT INTO concerts ${sql.insert({ ...c })} RETURNING ${sql.literal(columns)}`
    })

    const findById = SqlSchema.findOne({
      Request: ConcertId,
      Result: Concert,
      execute: (id) => sql`SELECT ${sql.literal(columns)} FROM concerts WHERE id = ${id}`
    })

    const list = SqlSchema.findAll({
      Request: Schema.Void,
      Result: Concert,
      execute: () => sql`SELECT ${sql.literal(columns)} FROM concerts ORDER BY seq`
    })

    return {
      /** Registers a concert; durable when this succeeds. */
      create: (input: CreateConcert) =>
        insert(new Concert({ id: ConcertId.make(crypto.randomUUID()), ...input })).pipe(
          Effect.orDie,
          Effect.withSpan("ConcertsRepo.create", { captureStackTrace: false })
        ),
      findById: (id: ConcertId) =>
        findById(id).pipe(Effect.orDie, Effect.withSpan("ConcertsRepo.findById", { captureStackTrace: false, attributes: { id } })),
      list: list().pipe(Effect.orDie, Effect.withSpan("ConcertsRepo.list", { captureStackTrace: false }))
    } as const
  })
}) {}
