import { useEffect, useRef } from "react";

let firstScreen = true;

/**
 * The screen's h1. It names the page in the tab title, and after in-app navigation it takes focus
 * so keyboard and screen-reader users land at the top of the new screen.
 */
export function ScreenTitle({ title, children }: { title: string; children?: React.ReactNode }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · Portico`;
    if (firstScreen) {
      firstScreen = false;
      return;
    }
    ref.current?.focus();
  }, [title]);
  return (
    <div className="screen-title">
      <h1 ref={ref} tabIndex={-1}>
        {title}
      </h1>
      {children}
    </div>
  );
}
