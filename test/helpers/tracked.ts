// Gateways, mock providers and nats-servers a test file starts as it goes (one per describe, or per test), all
// stopped once the file is over: gateways first, so none is left pointing at a stopped NATS or mock.
import { afterAll } from "bun:test";
import { type Gateway, makeTempDir, startGateway } from "./gateway.ts";
import { type MockProvider, startMockProvider } from "./mock-provider.ts";
import { NatsServer } from "./nats.ts";

export interface Tracked {
  launch(config: string, env?: Record<string, string>): Promise<Gateway>;
  newMock(): MockProvider;
  newNats(): Promise<NatsServer>;
}

/** Call at the top level of a test file: it registers the file's afterAll. */
export function tracked(opts: { startTimeoutMs?: number } = {}): Tracked {
  const started: Gateway[] = [];
  const mocks: MockProvider[] = [];
  const natsServers: NatsServer[] = [];
  afterAll(async () => {
    await Promise.all(started.map((g) => g.stop()));
    await Promise.all(natsServers.map((s) => s.stop()));
    await Promise.all(mocks.map((m) => m.stop()));
  });
  return {
    async launch(config, env) {
      const g = await startGateway({ config, env, startTimeoutMs: opts.startTimeoutMs });
      started.push(g);
      return g;
    },
    newMock() {
      const m = startMockProvider();
      mocks.push(m);
      return m;
    },
    async newNats() {
      const s = await NatsServer.launch({ storeDir: makeTempDir(), readyPollMs: 50 });
      natsServers.push(s);
      return s;
    },
  };
}
