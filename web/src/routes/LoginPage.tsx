import { type FormEvent, useState } from "react";
import { ApiError } from "../api/client";
import { useSession } from "../session";

export function LoginPage() {
  const { signIn } = useSession();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(email, password);
    } catch (err) {
      setError(
        err instanceof ApiError && (err.status === 401 || err.status === 400)
          ? "Wrong email or password."
          : err instanceof ApiError && err.status === 429
            ? "Too many attempts; wait a minute and try again."
            : `Could not sign in: ${err instanceof Error ? err.message : String(err)}`,
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="login">
      <form className="login__form" onSubmit={(event) => void submit(event)} data-testid="login-form">
        <h1 className="login__title">
          Annotate <span className="brand__accent">Anyone</span>
        </h1>
        <label className="login__label" htmlFor="email">
          Email
        </label>
        <input
          id="email"
          className="login__input"
          type="email"
          autoComplete="username"
          autoFocus
          required
          value={email}
          onChange={(event) => setEmail(event.target.value)}
        />
        <label className="login__label" htmlFor="password">
          Password
        </label>
        <input
          id="password"
          className="login__input"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(event) => setPassword(event.target.value)}
        />
        {error && (
          <p className="login__error" role="alert">
            {error}
          </p>
        )}
        <button className="button button--primary" type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
