import { navigate, useLocation } from "../router";
import { useOutboxState, useSession } from "../session";

/** Brand, where you are, what is not saved yet, and who you are. */
export function TopBar({ title }: { title?: string }) {
  const { state, outbox, signOut } = useSession();
  const me = state.status === "signed_in" ? state.me : null;
  return (
    <header className="topbar">
      <a
        className="brand"
        href="/"
        onClick={(event) => {
          event.preventDefault();
          navigate("/");
        }}
      >
        Annotate <span className="brand__accent">Anyone</span>
      </a>
      {title && <span className="topbar__title">{title}</span>}
      {me && <ProjectLinks />}
      <span className="topbar__spacer" />
      {outbox && <SaveStatus />}
      {me && (
        <>
          <span className="topbar__user">{me.user.display_name || me.user.email}</span>
          <button type="button" className="button button--quiet" onClick={() => void signOut()}>
            Sign out
          </button>
        </>
      )}
    </header>
  );
}

/** "All saved" only when the server confirmed every submit; otherwise how many are not. */
function SaveStatus() {
  const { outbox } = useSession();
  const state = useOutboxState(outbox);
  const refused = state.problems.length;
  const unsaved = state.entries.length + refused;
  let detail = "";
  if (state.entries.length > 0) {
    if (state.paused) detail = "sign in to send";
    else if (state.sending) detail = "saving…";
    else if (state.retryAt !== null) detail = `retrying (${state.lastError ?? "error"})`;
  }
  return (
    <span
      className={"save" + (unsaved > 0 ? " save--pending" : "") + (refused > 0 ? " save--problem" : "")}
      data-testid="save-status"
      data-unsaved={unsaved}
      role="status"
      aria-live="polite"
    >
      <span className="save__dot" aria-hidden="true" />
      {unsaved === 0 ? "All saved" : `${unsaved} unsaved`}
      {detail && <span className="save__detail"> · {detail}</span>}
      {refused > 0 && <span className="save__detail"> · {refused} refused by the server</span>}
    </span>
  );
}

/** Inside a project: its review queue, and its dashboard for reviewers, leads and admins. */
function ProjectLinks() {
  const { state } = useSession();
  const { pathname } = useLocation();
  const found = /^\/projects\/(\d+)\//.exec(pathname);
  if (!found?.[1] || state.status !== "signed_in") return null;
  const id = Number(found[1]);
  const role = state.me.memberships.find((m) => m.project_id === id)?.role;
  if (!state.me.user.is_admin && role !== "reviewer" && role !== "lead" && role !== "admin") return null;
  const links = [
    { href: `/projects/${id}/review`, label: "Review", current: pathname.includes("/review") },
    { href: `/projects/${id}/dashboard`, label: "Dashboard", current: pathname.includes("/dashboard") },
  ];
  return (
    <nav className="topbar__nav" aria-label="project">
      {links.map((link) => (
        <a
          key={link.href}
          href={link.href}
          className={"button button--quiet" + (link.current ? " topbar__nav--current" : "")}
          data-testid={`topbar-${link.label.toLowerCase()}`}
          onClick={(event) => {
            event.preventDefault();
            navigate(link.href);
          }}
        >
          {link.label}
        </a>
      ))}
    </nav>
  );
}
