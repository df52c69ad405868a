import { useEffect, useState } from "react";
import * as api from "../api/endpoints";
import type { Project } from "../api/types";
import { navigate } from "../router";

/** Pick a project: arrows or j/k move, Enter opens its review queue, 1-9 open directly. */
export function ProjectsPage() {
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState(0);

  useEffect(() => {
    api.projects().then(setProjects, (err: unknown) => setError(err instanceof Error ? err.message : String(err)));
  }, []);

  useEffect(() => {
    const onKey = (event: KeyboardEvent): void => {
      if (!projects || projects.length === 0 || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.target instanceof HTMLInputElement) return;
      const open = (project: Project | undefined): void => {
        if (project) navigate(`/projects/${project.id}/review`);
      };
      if (event.key === "ArrowDown" || event.key === "j") setSelected((i) => Math.min(projects.length - 1, i + 1));
      else if (event.key === "ArrowUp" || event.key === "k") setSelected((i) => Math.max(0, i - 1));
      else if (event.key === "Enter") open(projects[selected]);
      else if (/^[1-9]$/.test(event.key)) open(projects[Number(event.key) - 1]);
      else return;
      event.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [projects, selected]);

  return (
    <main className="page">
      <h1 className="page__title">Projects</h1>
      {error && <p className="login__error">Could not load projects: {error}</p>}
      {projects === null && !error && <p className="muted">loading…</p>}
      {projects?.length === 0 && <p className="muted">You are not a member of any project yet. Ask a lead to add you.</p>}
      {projects && projects.length > 0 && (
        <>
          <ul className="projects" data-testid="projects">
            {projects.map((project, index) => (
              <li key={project.id}>
                <a
                  className={"project" + (index === selected ? " project--selected" : "")}
                  href={`/projects/${project.id}/review`}
                  data-testid={`project-${project.id}`}
                  onClick={(event) => {
                    event.preventDefault();
                    navigate(`/projects/${project.id}/review`);
                  }}
                >
                  <kbd className="project__key">{index < 9 ? index + 1 : ""}</kbd>
                  <span className="project__name">{project.name}</span>
                  <span className="project__slug">{project.slug}</span>
                  <span className="project__role">{project.role ?? ""}</span>
                  {project.description && <span className="project__description">{project.description}</span>}
                </a>
              </li>
            ))}
          </ul>
          <p className="muted page__hint">
            <kbd>↑</kbd>
            <kbd>↓</kbd> select · <kbd>Enter</kbd> review · <kbd>1</kbd>–<kbd>9</kbd> open directly
          </p>
        </>
      )}
    </main>
  );
}
