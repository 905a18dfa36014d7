import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Effect, FiberRef } from "effect"
import { Api } from "../domain/Api.js"
import { DatabaseUrlUnusable, NoSuchEndpoint, OrganiserNotCreated, Unauthorized } from "../domain/Errors.js"
import { OrganiserCreated } from "../domain/Organiser.js"
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
    return handlers.handle("create", ({ payload }) =>
      Effect.gen(function*() {
        // Without an ADMIN_TOKEN this deployment has one organiser, and no such endpoint.
        if (!organisers.adminConfigured) {
          const request = yield* HttpServerRequest.HttpServerRequest
          return yield* NoSuchEndpoint.of(request.method, request.url)
        }
        const caller = yield* FiberRef.get(CurrentCaller)
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
