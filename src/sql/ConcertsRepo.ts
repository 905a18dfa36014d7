import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import { Effect, FiberRef, identity } from "effect"
import { keysetPages, type PageGate } from "./pages.js"
import { Concert, type ConcertRow, type CreateConcert } from "../domain/Concert.js"
import { ConcertId } from "../domain/Ids.js"
import { CurrentOrganiser, newId } from "../domain/Organiser.js"
import { withSpan } from "../Spans.js"

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
      /** Registers a concert of the current organiser (its id says whose); durable when this succeeds. */
      create: (input: CreateConcert) =>
        Effect.flatMap(FiberRef.get(CurrentOrganiser), (organiser) =>
          insert(new Concert({ id: ConcertId.make(newId(organiser)), ...input }))).pipe(
          Effect.orDie,
          withSpan("ConcertsRepo.create", { captureStackTrace: false })
        ),
      findById: (id: ConcertId) =>
        findById(id).pipe(Effect.orDie, withSpan("ConcertsRepo.findById", { captureStackTrace: false, attributes: { id } })),
      /** Every concert, in creation order, page by page (`keysetPages`); `each` wraps the reading of every page. */
      list: (size: number, each: PageGate = identity) =>
        keysetPages(
          "0",
          (after: string) =>
            page(after, size).pipe(Effect.orDie, each, withSpan("ConcertsRepo.page", { captureStackTrace: false })),
          size,
          (last) => last.seq
        )
    } as const
  })
}) {}
