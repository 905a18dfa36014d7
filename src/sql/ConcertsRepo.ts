import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, identity, Option, Stream } from "effect"
import type { PageGate } from "./TicketsRepo.js"
import * as crypto from "node:crypto"
import { Concert, type ConcertRow, type CreateConcert } from "../domain/Concert.js"
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

    /** One page of the list in creation order, after `seq` (keyset), without a schema decode as ticket pages. */
    const page = (after: string, size: number) =>
      sql<ConcertRow & { readonly seq: string }>`
        SELECT seq::text, ${sql.literal(columns)} FROM concerts WHERE seq > ${after}::bigint ORDER BY seq LIMIT ${size}`

    return {
      /** Registers a concert; durable when this succeeds. */
      create: (input: CreateConcert) =>
        insert(new Concert({ id: ConcertId.make(crypto.randomUUID()), ...input })).pipe(
          Effect.orDie,
          Effect.withSpan("ConcertsRepo.create", { captureStackTrace: false })
        ),
      findById: (id: ConcertId) =>
        findById(id).pipe(Effect.orDie, Effect.withSpan("ConcertsRepo.findById", { captureStackTrace: false, attributes: { id } })),
      /**
       * Every concert, page by page: the first page is read before this returns (so an
       * unavailable database fails here), the rest as the stream is pulled.
       */
      list: (size: number, each: PageGate = identity) =>
        Effect.gen(function*() {
          const read = (after: string) =>
            page(after, size).pipe(Effect.orDie, each, Effect.withSpan("ConcertsRepo.page", { captureStackTrace: false }))
          const next = (rows: ReadonlyArray<{ readonly seq: string }>): Option.Option<string> => {
            const last = rows.at(-1)
            return rows.length < size || last === undefined ? Option.none() : Option.some(last.seq)
          }
          const first = yield* read("0")
          return Stream.concat(
            Stream.succeed(first),
            Option.match(next(first), {
              onNone: () => Stream.empty,
              onSome: (after) =>
                Stream.paginateEffect(after, (cursor) => Effect.map(read(cursor), (rows) => [rows, next(rows)] as const))
            })
          )
        })
    } as const
  })
}) {}
