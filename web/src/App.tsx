import { lazy, Suspense, useEffect } from "react";
import { TopBar } from "./components/TopBar";
import { match, navigate, useLocation } from "./router";
import { isSection } from "./features/dashboard/sections";
import { InvitePage } from "./routes/InvitePage";
import { LoginPage } from "./routes/LoginPage";
import { ProjectsPage } from "./routes/ProjectsPage";
import { ReviewPage } from "./routes/ReviewPage";
import { useSession } from "./session";

// The dashboard and its charting library load only when a lead opens it, not on the review screen.
const DashboardPage = lazy(() => import("./routes/DashboardPage").then((m) => ({ default: m.DashboardPage })));

export function App() {
  const { pathname, search } = useLocation();
  const { state, retry } = useSession();
  const route = match(pathname, search);

  useEffect(() => {
    if (state.status === "anonymous" && route.page !== "login" && route.page !== "invite") {
      const here = pathname + (search.size > 0 ? `?${search}` : "");
      navigate(here === "/" ? "/login" : `/login?next=${encodeURIComponent(here)}`, { replace: true });
    } else if (state.status === "signed_in" && route.page === "login") {
      navigate(route.next ?? "/", { replace: true });
    }
  }, [state.status, route, pathname, search]);

  if (state.status === "loading") return <div className="splash">Annotate Anyone</div>;
  if (state.status === "unreachable") {
    return (
      <main className="page">
        <p className="login__error">The server cannot be reached: {state.detail}</p>
        <button type="button" className="button" onClick={retry}>
          Try again
        </button>
      </main>
    );
  }
  if (route.page === "invite") return <InvitePage token={route.token} />;
  if (route.page === "login" || state.status === "anonymous") return <LoginPage />;
  switch (route.page) {
    case "projects":
      return (
        <div className="shell">
          <TopBar />
          <ProjectsPage />
        </div>
      );
    case "review":
      return (
        <div className="shell">
          <ReviewPage projectId={route.projectId} />
        </div>
      );
    case "dashboard":
      if (isSection(route.section)) {
        return (
          <div className="shell">
            <Suspense fallback={<main className="page muted">loading…</main>}>
              <DashboardPage projectId={route.projectId} section={route.section} />
            </Suspense>
          </div>
        );
      }
      return <NotFound />;
    default:
      return <NotFound />;
  }
}

function NotFound() {
  return (
    <div className="shell">
      <TopBar />
      <main className="page">
        <p>No page here. <a href="/">Projects</a></p>
      </main>
    </div>
  );
}
