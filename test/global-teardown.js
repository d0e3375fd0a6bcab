export default async function globalTeardown() {
  await globalThis.__secmlopsTestEnv?.teardown();
}
