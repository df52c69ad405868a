// The data lead's dashboard: one page per question a lead asks, the section in the URL.
import "./dashboard.css";
import type { Project, Role } from "../../api/types";
import { navigate } from "../../router";
import { ExportsPanel } from "./ExportsPanel";
import { FlywheelPanel } from "./FlywheelPanel";
import { FunnelPanel } from "./FunnelPanel";
import { ModelsPanel } from "./ModelsPanel";
import { PeoplePanel } from "./PeoplePanel";
import { type Section, SECTIONS } from "./sections";
import { SourcesPanel } from "./SourcesPanel";
import { TaxonomyPanel } from "./TaxonomyPanel";
import { WorkPanel } from "./WorkPanel";

const RANK: Record<Role, number> = { annotator: 0, reviewer: 1, lead: 2, admin: 3 };

export function Dashboard({ project, section, me }: { project: Project; section: Section; me: { id: number; is_admin: boolean } }) {
  const role: Role = me.is_admin ? "admin" : (project.role ?? "annotator");
  const isLead = RANK[role] >= RANK.lead;
  const base = `/projects/${project.id}/dashboard`;
  const title = SECTIONS.find((s) => s.key === section)?.title ?? section;
  return (
    <div className="dash">
      <nav className="dash__nav" aria-label="dashboard">
        {SECTIONS.filter((s) => s.key !== "people" || isLead).map((s) => (
          <a
            key={s.key}
            href={`${base}/${s.key}`}
            className={"dash__link" + (s.key === section ? " dash__link--current" : "")}
            aria-current={s.key === section ? "page" : undefined}
            data-testid={`nav-${s.key}`}
            onClick={(event) => {
              event.preventDefault();
              navigate(`${base}/${s.key}`);
            }}
          >
            {s.title}
          </a>
        ))}
        <a
          href={`/projects/${project.id}/review`}
          className="dash__link dash__link--review"
          onClick={(event) => {
            event.preventDefault();
            navigate(`/projects/${project.id}/review`);
          }}
        >
          Review queue →
        </a>
      </nav>
      <main className="dash__main" data-testid={`dashboard-${section}`}>
        <h1 className="page__title">
          {title} <span className="muted">· {project.name}</span>
        </h1>
        {section === "funnel" && <FunnelPanel projectId={project.id} />}
        {section === "flywheel" && <FlywheelPanel projectId={project.id} />}
        {section === "work" && <WorkPanel projectId={project.id} canSeePeople={RANK[role] >= RANK.reviewer} />}
        {section === "models" && <ModelsPanel projectId={project.id} isLead={isLead} />}
        {section === "taxonomy" && <TaxonomyPanel projectId={project.id} isLead={isLead} />}
        {section === "sources" && <SourcesPanel projectId={project.id} isLead={isLead} />}
        {section === "exports" && <ExportsPanel projectId={project.id} isLead={isLead} />}
        {section === "people" &&
          (isLead ? (
            <PeoplePanel projectId={project.id} isAdmin={me.is_admin} myId={me.id} />
          ) : (
            <p className="muted">People are managed by the project's leads.</p>
          ))}
      </main>
    </div>
  );
}
