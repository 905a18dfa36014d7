/**
 * `/dashboard`: the live on-sale page, served by the service itself. The page, its script and
 * the chart library (uPlot, from `node_modules`) are read once at start; `/dashboard/state` is
 * the latest snapshot (`Dashboard`), which the page polls once a second. Outside the API
 * document, as `/docs` is.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Layer } from "effect"
import { readFile } from "node:fs/promises"
import { createRequire } from "node:module"
import { OrganiserDatabases } from "../sql/Organisers.js"
import { operatorOnly } from "./Access.js"
import { Dashboard } from "./Dashboard.js"

// Beside this module in the sources, beside `dist/main.js` compiled (`build.mjs` copies them).
const here = (file: string) => new URL(`./dashboard/${file}`, import.meta.url)
const uplot = (file: string) => createRequire(import.meta.url).resolve(`uplot/dist/${file}`)

const assets = [
  { path: "/dashboard", file: here("index.html"), contentType: "text/html; charset=utf-8" },
  { path: "/dashboard/dashboard.js", file: here("dashboard.js"), contentType: "text/javascript; charset=utf-8" },
  { path: "/dashboard/dashboard.css", file: here("dashboard.css"), contentType: "text/css; charset=utf-8" },
  { path: "/dashboard/uPlot.iife.min.js", file: uplot("uPlot.iife.min.js"), contentType: "text/javascript; charset=utf-8" },
  { path: "/dashboard/uPlot.min.css", file: uplot("uPlot.min.css"), contentType: "text/css; charset=utf-8" }
] as const

export const DashboardHttpLive = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function*() {
    const dashboard = yield* Dashboard
    // Every organiser's figures: the operator's alone when there is an ADMIN_TOKEN.
    const guarded = operatorOnly((yield* OrganiserDatabases).adminConfigured)
    for (const asset of assets) {
      const body = yield* Effect.promise(() => readFile(asset.file))
      const response = HttpServerResponse.uint8Array(body, {
        contentType: asset.contentType,
        headers: { "cache-control": "no-cache" }
      })
      yield* router.get(asset.path as `/${string}`, guarded(Effect.succeed(response)))
    }
    yield* router.get(
      "/dashboard/state",
      guarded(Effect.sync(() =>
        HttpServerResponse.text(dashboard.json(), {
          contentType: "application/json",
          headers: { "cache-control": "no-store" }
        })
      ))
    )
  })
).pipe(Layer.provide(Dashboard.Default))
