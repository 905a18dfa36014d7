import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Effect, Either, FiberRef, Option } from "effect"
import { Api } from "../domain/Api.js"
import { DatabaseUrlUnusable, NoSuchEndpoint, OrganiserNotCreated, OrganiserNotFound, Unauthorized } from "../domain/Errors.js"
import { OrganiserCreated, organiserOf, OrganiserSummary } from "../domain/Organiser.js"
import { DatabaseUrlRefused, OrganiserDatabases, rootMessage } from "../sql/Organisers.js"
import { CurrentCaller } from "./Access.js"

const postgresUrl = (text: string) => {
  try {
    const url = new URL(text)
    return (url.protocol === "postgres:" || url.protocol === "postgresql:") && url.hostname !== ""
  } catch {
    return false
  }
}


export const OrganisersHttpLive = HttpApiBuilder.group(Api, "organisers", (handlers) =>
  Effect.gen(function*() {
    const organisers = yield* OrganiserDatabases
    // Without an ADMIN_TOKEN this deployment has one organiser, and none of these endpoints.
    const configured = Effect.gen(function*() {
      if (organisers.adminConfigured) return yield* FiberRef.get(CurrentCaller)
      const request = yield* HttpServerRequest.HttpServerRequest
      return yield* NoSuchEndpoint.of(request.method, request.url)
    })
    return handlers
      .handle("list", () =>
        Effect.gen(function*() {
          if ((yield* configured)._tag !== "Admin") return yield* Unauthorized.adminNeeded()
          const rows = yield* Effect.orDie(organisers.list)
          return rows.map((row) => new OrganiserSummary({ id: row.id, name: row.name, created_at: row.created_at.toISOString() }))
        }))
      .handle("replaceKey", ({ path }) =>
        Effect.gen(function*() {
          const caller = yield* configured
          const id = Either.getOrUndefined(path.id)
          const notFound = OrganiserNotFound.of(Either.merge(path.id))
          // The operator, or the organiser itself (a key of its own that leaked is replaced with it).
          if (caller._tag === "Anyone") return yield* Unauthorized.keyNeeded()
          if (id === undefined || (caller._tag === "Organiser" && caller.organiser !== organiserOf(id))) return yield* notFound
          const replaced = yield* Effect.orDie(organisers.replaceKey(id))
          if (Option.isNone(replaced)) return yield* notFound
          yield* Effect.logInfo("organiser key replaced").pipe(Effect.annotateLogs({ id, by: caller._tag }))
          return new OrganiserCreated({ id: replaced.value.id, name: replaced.value.name, api_key: replaced.value.apiKey })
        }))
      .handle("create", ({ payload }) =>
        Effect.gen(function*() {
          const caller = yield* configured
          if (caller._tag !== "Admin") return yield* Unauthorized.adminNeeded()
          if (payload.database_url !== undefined && !postgresUrl(payload.database_url)) {
            return yield* new DatabaseUrlUnusable({ message: "database_url must be a postgres:// or postgresql:// URL" })
          }
          const created = yield* organisers.create(payload.name, payload.database_url).pipe(
            Effect.catchAll((error): Effect.Effect<never, DatabaseUrlUnusable | OrganiserNotCreated> =>
              error instanceof DatabaseUrlRefused
                ? Effect.fail(new DatabaseUrlUnusable({ message: error.message }))
                : Effect.fail(new OrganiserNotCreated({ message: `the organiser's database could not be created: ${rootMessage(error)}` }))
            )
          )
          yield* Effect.logInfo("organiser created").pipe(Effect.annotateLogs({ id: created.id, name: created.name }))
          return new OrganiserCreated({ id: created.id, name: created.name, api_key: created.apiKey })
        }))
  }))
