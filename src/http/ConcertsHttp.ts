import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { Api } from "../domain/Api.js"
import { ConcertEntity } from "../domain/ConcertEntity.js"
import { NotFound, Unavailable } from "../domain/Errors.js"
import { ConcertId, isUuid } from "../domain/Ids.js"
import { ConcertsRepo } from "../sql/ConcertsRepo.js"
import { PrintQueue } from "../workers/PrintQueue.js"
import { ClosedSales } from "./ClosedSales.js"
import { Health } from "./Health.js"
import { clusterUnavailable } from "./clusterErrors.js"
import { findOrNotFound } from "./lookup.js"

const notFound = (id: string) => new NotFound({ message: `concert ${id} does not exist` })

export const ConcertsHttpLive = HttpApiBuilder.group(Api, "concerts", (handlers) =>
  Effect.gen(function*() {
    const concerts = yield* ConcertsRepo
    const health = yield* Health
    const concert = yield* ConcertEntity.client
    const closedSales = yield* ClosedSales
    const printQueue = yield* PrintQueue

    const find = (id: string) => findOrNotFound(id, ConcertId.make, concerts.findById, "concert")

    return handlers
      .handle("health", () => health.check)
      .handle("list", () => concerts.list)
      .handle("create", ({ payload }) => concerts.create(payload))
      .handle("get", ({ path }) => find(path.id))
      .handle("update", ({ path, payload }) =>
        isUuid(path.id)
          ? concert(path.id).Update(payload).pipe(
            Effect.tap((updated) => {
              closedSales.forget(path.id)
              return printQueue.concertChanged(path.id, updated.date)
            }),
            Effect.catchTags({
              ConcertNotFound: () => Effect.fail(notFound(path.id)),
              JournalUnavailable: () => Effect.fail(new Unavailable({ message: "the concert could not be saved; retry" })),
              ...clusterUnavailable
            }),
            Effect.withSpan("ConcertsHttp.update", { captureStackTrace: false, attributes: { concertId: path.id } })
          )
          : Effect.fail(notFound(path.id)))
      .handle("seats", ({ path }) =>
        Effect.flatMap(
          find(path.id),
          () => Effect.fail(new Unavailable({ message: "the seating plan is not rendered yet", retryAfterSeconds: 5 }))
        ))
  }))
